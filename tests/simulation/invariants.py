"""CONTRACT §7's money invariants, checked against our store (refunds, ledgers, audit trail, published events)
and against Amazon's truth (the simulator's refunds and its call log)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from amazon_pay_refunds.adapters.dynamodb import items
from amazon_pay_refunds.core.lifecycle import reservation_state
from amazon_pay_refunds.core.models import (
    FINAL_STATUSES,
    AttemptState,
    PaymentApi,
    Refund,
    RefundStatus,
    parse_qualified_id,
    qualified_id,
)
from amazon_pay_refunds.core.references import parse_refund_reference_id
from amazon_pay_sim.state import Refund as AmazonRefund

from .world import REGION, TABLE, World

_DESERIALIZER = TypeDeserializer()
END_STATUSES = FINAL_STATUSES | {RefundStatus.MANUAL_ACTION_REQUIRED}
# Where each status may go next (docs/DESIGN.md "Refund lifecycle"); finals go nowhere.
ALLOWED_NEXT: Mapping[RefundStatus | None, frozenset[RefundStatus]] = {
    None: frozenset({RefundStatus.REQUESTED}),
    RefundStatus.REQUESTED: frozenset(
        {
            RefundStatus.PENDING,
            RefundStatus.COMPLETED,
            RefundStatus.FAILED,
            RefundStatus.RETRY_SCHEDULED,
            RefundStatus.MANUAL_ACTION_REQUIRED,
        }
    ),
    RefundStatus.PENDING: frozenset(
        {RefundStatus.COMPLETED, RefundStatus.RETRY_SCHEDULED, RefundStatus.MANUAL_ACTION_REQUIRED}
    ),
    RefundStatus.RETRY_SCHEDULED: frozenset(
        {RefundStatus.PENDING, RefundStatus.COMPLETED, RefundStatus.MANUAL_ACTION_REQUIRED}
    ),
    RefundStatus.MANUAL_ACTION_REQUIRED: frozenset(
        {RefundStatus.COMPLETED, RefundStatus.RESOLVED_OUT_OF_BAND}
    ),
    RefundStatus.COMPLETED: frozenset(),
    RefundStatus.FAILED: frozenset(),
    RefundStatus.RESOLVED_OUT_OF_BAND: frozenset(),
}


# API v2 refund states in v1's terms (the invariants read both APIs alike).
V2_STATES = {"RefundInitiated": "Pending", "Refunded": "Completed", "Declined": "Declined"}


@dataclass(frozen=True)
class AmazonTruth:
    """One refund at Amazon, either API: ids as the service names them (`qualified_id`: a v2 charge as
    `v2:{id}`; refund ids as Amazon's, which is how attempts store them), the state in v1's terms."""

    amazon_refund_id: str
    refund_reference_id: str  # v2: the idempotency key ("" for a refund made outside the API)
    amazon_capture_id: str
    amount: Decimal
    state: str


@dataclass(frozen=True)
class Payment:
    amount: Decimal


class Snapshot:
    """Our table and Amazon's truth at one moment (v1 captures and v2 charges, by their ledger ids)."""

    def __init__(self, world: World) -> None:
        self.refunds: dict[str, Refund] = {}
        self.ledger_items: dict[str, dict[str, Any]] = {}
        for item in _scan(world):
            if items.is_refund_item(item):
                refund = items.refund_from_item(item)
                self.refunds[refund.refund_id] = refund
            elif items.is_ledger_item(item):
                self.ledger_items[items.ledger_id_of(item)] = item
        market = world.simulator.market
        self.captures: dict[str, Payment | Any] = dict(market.captures)
        self.amazon_refunds: list[AmazonRefund | AmazonTruth] = list(market.refunds.values())
        self.committed = {cid: market.committed_total(c) for cid, c in market.captures.items()}
        pay_v2 = world.simulator.pay_v2
        for charge_id, charge in pay_v2.charges.items():
            ledger_id = qualified_id(PaymentApi.V2, charge_id)
            self.captures[ledger_id] = Payment(charge.amount)
            self.committed[ledger_id] = sum(
                (
                    pay_v2.refunds[i].amount
                    for i in charge.refund_ids
                    if pay_v2.refunds[i].state != "Declined"
                ),
                Decimal(0),
            )
        for v2_refund in pay_v2.refunds.values():
            self.amazon_refunds.append(
                AmazonTruth(
                    amazon_refund_id=v2_refund.refund_id,
                    refund_reference_id=v2_refund.idempotency_key or "",
                    amazon_capture_id=qualified_id(PaymentApi.V2, v2_refund.charge_id),
                    amount=v2_refund.amount,
                    state=V2_STATES.get(v2_refund.state, v2_refund.state),
                )
            )
        self.foreign = set(world.foreign_refunds)
        # (7) ledger id → amounts of the v2 refunds by others this service was told of while pending
        self.told_while_pending: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
        for refund_id, ledger_id in world.told_while_pending.items():
            told = pay_v2.refunds[refund_id]
            self.told_while_pending[ledger_id].append(
                (refund_id, told.amount if told.state != "Declined" else Decimal(0))
            )
        self.ours_at_amazon: dict[str, list[AmazonRefund | AmazonTruth]] = defaultdict(list)
        for amazon in self.amazon_refunds:
            parsed = parse_refund_reference_id(amazon.refund_reference_id)
            if parsed is not None and amazon.amazon_refund_id not in self.foreign:
                self.ours_at_amazon[parsed[0]].append(amazon)


def _scan(world: World) -> Iterable[dict[str, Any]]:
    """Every item, read from moto's backend directly (a Scan through boto costs ~10 ms of serialization).
    Looked up by name each time: moto replaces the table object when it rolls back a transaction."""
    del world
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[TABLE]
    for item in table.all_items():
        yield {k: _DESERIALIZER.deserialize(v) for k, v in item.to_json()["Attributes"].items()}


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def check_always(snapshot: Snapshot, previous_histories: dict[str, tuple[Any, ...]]) -> list[str]:
    """The invariants that hold at every instant (between any two steps)."""
    found: list[str] = []
    refunds = snapshot.refunds
    # (1) per capture, our ledger: in-flight + completed + external <= captured; its counters agree.
    for cid, item in snapshot.ledger_items.items():
        captured, reserved = _money(item["captured"]), _money(item["reserved"])
        external, available = _money(item["external"]), _money(item["available"])
        if available != captured - reserved - external:
            found.append(f"I1 ledger {cid}: available {available} != captured - reserved - external")
        mine = [refunds[r] for r in sorted(item.get("refund_ids", ())) if r in refunds]
        held = sum((r.amount for r in mine if reservation_state(r) != "released"), Decimal(0))
        if held != reserved:
            found.append(f"I1 ledger {cid}: reserved {reserved} but its refunds hold {held}")
        if held + external > captured:
            found.append(
                f"I1 ledger {cid}: in-flight+completed {held} + external {external} > captured {captured}"
            )
    # (1) per capture, Amazon's truth: everything refunded or being refunded <= captured, and what Amazon
    # holds for our refunds never exceeds what we reserved for them.
    for cid, capture in snapshot.captures.items():
        if snapshot.committed[cid] > capture.amount:
            found.append(
                f"I1 amazon {cid}: refunds {snapshot.committed[cid]} exceed captured {capture.amount}"
            )
    for refund_id, at_amazon in sorted(snapshot.ours_at_amazon.items()):
        ours = refunds.get(refund_id)
        live = [a for a in at_amazon if a.state != "Declined"]
        completed = [a for a in at_amazon if a.state == "Completed"]
        # (2) a logical refund yields at most one Completed Amazon refund (and never two live at once).
        if len(completed) > 1:
            found.append(f"I2 {refund_id}: {len(completed)} Completed Amazon refunds")
        if len(live) > 1:
            found.append(f"I2 {refund_id}: {len(live)} Amazon refunds Pending/Completed at once")
        if ours is None:
            found.append(f"I1 {refund_id}: Amazon refunded under our reference, but we have no such refund")
            continue
        for amazon in at_amazon:
            if amazon.amount != ours.amount or amazon.amazon_capture_id != ours.ledger_id:
                found.append(f"I3 {refund_id}: Amazon's {amazon.amazon_refund_id} differs from the refund")
        if live and (ours.reservation_pending or reservation_state(ours) == "released"):
            found.append(f"I1 {refund_id}: Amazon holds {live[0].state} money but no reservation is held")
    # (6) one classification: no attempt of ours is bound to a refund that someone else made at Amazon
    # (however its reference id looks), and no refund of ours is recorded as external.
    for refund_id, refund in sorted(refunds.items()):
        for attempt in refund.attempts:
            if attempt.amazon_refund_id in snapshot.foreign:
                found.append(
                    f"I6 {refund_id}: attempt {attempt.attempt} took {attempt.amazon_refund_id}, "
                    "a refund someone else made, for ours"
                )
    ours_ids = {a.amazon_refund_id for at_amazon in snapshot.ours_at_amazon.values() for a in at_amazon}
    for cid, item in snapshot.ledger_items.items():
        for amazon_refund_id in item.get("externals", {}):
            if amazon_refund_id in ours_ids:
                found.append(f"I6 ledger {cid}: our own {amazon_refund_id} is recorded as external")
    # (7) a refund by others on a v2 charge whose IPN this service answered 200 while Amazon still had it
    # RefundInitiated (so Get Charge's refundedAmount did not show it) is counted on the charge's ledger
    # from then on unless Amazon declined it (then it may be released: it moved no money): the ledger
    # exists, and its external total holds at least every such refund Amazon has not declined (refunds by
    # others counted twice are the safe side).
    for ledger_id, told in sorted(snapshot.told_while_pending.items()):
        ledger_item = snapshot.ledger_items.get(ledger_id)
        owed = sum((amount for _, amount in told), Decimal(0))
        if ledger_item is None:
            first = told[0][0]
            found.append(f"I7 ledger {ledger_id}: none, but {first} (pending, by others) was answered 200")
        elif (external := _money(ledger_item["external"])) < owed:
            names = ", ".join(refund_id[-7:] for refund_id, _ in told)
            found.append(
                f"I7 ledger {ledger_id}: external {external} < {owed} of refunds by others "
                f"answered 200 while pending ({names})"
            )
    # (4) audit trail: contiguous, forward only, finals final, append-only since last seen.
    for refund_id, refund in sorted(refunds.items()):
        history = refund.history
        previous: RefundStatus | None = None
        for index, entry in enumerate(history):
            if entry.from_ is not previous:
                found.append(f"I4 {refund_id}: history[{index}] from {entry.from_} but status was {previous}")
            if entry.to not in ALLOWED_NEXT[previous]:
                found.append(f"I4 {refund_id}: history[{index}] {previous} -> {entry.to} is not allowed")
            previous = entry.to
        if previous is not refund.status:
            found.append(f"I5 {refund_id}: status {refund.status} but the audit trail ends at {previous}")
        key = tuple((h.from_, h.to, h.cause) for h in history)
        seen = previous_histories.get(refund_id)
        if seen is not None and key[: len(seen)] != seen:
            found.append(f"I4 {refund_id}: the audit trail was rewritten ({len(seen)} -> {len(key)} entries)")
        previous_histories[refund_id] = key
    return found


def check_call_log(world: World) -> list[str]:
    """(3) one set of parameters per RefundReferenceId, and Amazon never answered DuplicateRequest."""
    found: list[str] = []
    sent: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for v2_call in world.simulator.pay_v2.calls():
        if v2_call["reason_code"] == "DuplicateIdempotencyKey":
            found.append(f"I3 {v2_call['idempotency_key']}: Amazon answered DuplicateIdempotencyKey (API v2)")
    for call in world.simulator.calls():
        if call["action"] != "Refund":
            continue
        params = call["params"]
        reference = params.get("RefundReferenceId", "?")
        sent[reference].add(tuple(str(params.get(k)) for k in sorted(params)))
        if call["code"] in ("DuplicateRequest", "DuplicateReferenceId"):
            if reference in world.foreign_references:
                continue  # the seller's other system took our next reference id first: Amazon refuses ours
            found.append(f"I3 {reference}: Amazon answered {call['code']} (call #{call['seq']})")
    for reference, variants in sorted(sent.items()):
        if len(variants) > 1:
            found.append(f"I3 {reference}: sent with {len(variants)} different parameter sets")
    return found


def check_final(world: World, snapshot: Snapshot) -> list[str]:
    """At quiescence: every refund ended; ours and Amazon's completed refunds match one to one; every
    transition published."""
    found: list[str] = []
    refunds = snapshot.refunds
    for refund_id, refund in sorted(refunds.items()):
        if refund.status not in END_STATUSES:
            found.append(f"I5 {refund_id}: still {refund.status} at quiescence")
    pending = [a for a in snapshot.amazon_refunds if a.state == "Pending"]
    if pending:
        found.append(f"quiescence: {len(pending)} Amazon refunds still Pending")
    completed_at_amazon: dict[str, Decimal] = defaultdict(Decimal)
    for refund_id, at_amazon in sorted(snapshot.ours_at_amazon.items()):
        ours = refunds.get(refund_id)
        for amazon in at_amazon:
            if amazon.state != "Completed":
                continue
            completed_at_amazon[amazon.amazon_capture_id] += amazon.amount
            attempt = (
                None
                if ours is None
                else next((a for a in ours.attempts if a.amazon_refund_id == amazon.amazon_refund_id), None)
            )
            if attempt is None or attempt.state is not AttemptState.COMPLETED:
                state = "missing" if attempt is None else attempt.state.value
                found.append(
                    f"1:1 {refund_id}: Amazon completed {amazon.amazon_refund_id}; our attempt is {state}"
                )
            elif ours is not None and ours.status is not RefundStatus.COMPLETED:
                found.append(f"1:1 {refund_id}: Amazon completed it, but our refund is {ours.status}")
    for refund_id, refund in sorted(refunds.items()):
        if refund.status is not RefundStatus.COMPLETED:
            continue
        done = [a for a in snapshot.ours_at_amazon.get(refund_id, []) if a.state == "Completed"]
        ours_done = [a for a in refund.attempts if a.state is AttemptState.COMPLETED]
        if len(done) != 1 or len(ours_done) != 1 or done[0].amazon_refund_id != ours_done[0].amazon_refund_id:
            found.append(f"1:1 {refund_id}: Completed here, Amazon has {len(done)} Completed refunds for it")
    for cid in sorted(snapshot.ledger_items):
        ledger = world.inspect.get_ledger(cid)
        assert ledger is not None
        if ledger.completed != completed_at_amazon.get(cid, Decimal(0)):
            truth = completed_at_amazon[cid]
            found.append(f"1:1 ledger {cid}: completed {ledger.completed} != Amazon's completed {truth}")
    # (5) every transition published: each history entry's event(s), and nothing else.
    expected = {
        f"{refund_id}/{index}/{detail_type.name.lower()}"
        for refund_id, refund in refunds.items()
        for index, entry in enumerate(refund.history)
        for detail_type in entry.detail_types
    }
    published = set()
    chargebacks_published = set()
    external_states: dict[str, list[tuple[str, str | None]]] = defaultdict(list)  # entry → (event, state)
    for entry in world.eventbridge.entries:
        if entry["DetailType"] == "Chargeback Recorded":
            chargebacks_published.add(_event_id(entry))
        elif entry["DetailType"] in ("External Refund Detected", "External Refund Updated"):
            detail = json.loads(entry["Detail"])
            payment = detail.get("amazon_charge_id") or detail.get("amazon_capture_id")
            key = f"{payment}/{detail['amazon_refund_id']}"
            external_states[key].append((entry["DetailType"], detail["state"]))
        else:
            published.add(_event_id(entry))
    for missing in sorted(expected - published):
        found.append(f"I5 event {missing} never published")
    for extra in sorted(published - expected):
        found.append(f"I5 event {extra} published without its transition")
    # ... each external refund recorded published as Detected, and each later state as Updated, once:
    # the last state published is the entry's state now (states only move Pending → Completed/Declined).
    for cid, item in sorted(snapshot.ledger_items.items()):
        _, bare_id = parse_qualified_id(cid)
        for external in items.externals_from_item(item):
            if external.amount is None:
                continue
            states = sorted(set(external_states.pop(f"{bare_id}/{external.amazon_refund_id}", [])))
            detected = [state for kind, state in states if kind == "External Refund Detected"]
            updated = [state for kind, state in states if kind == "External Refund Updated"]
            last = updated[-1] if updated else (detected[0] if detected else None)
            if len(detected) != 1 or len(updated) > 1 or last != external.state:
                found.append(
                    f"I5 external {cid}/{external.amazon_refund_id} ({external.state}): published {states}"
                )
    for key, states in sorted(external_states.items()):
        found.append(f"I5 external {key}: published {sorted(set(states))} but not on a ledger")
    # ... and each chargeback recorded (its CHARGEBACK IPN answered 200) published, nothing else.
    recorded = {
        f"{permission}/chargeback/{answered.chargeback_id}"
        for permission, answers in world.adapter.answered_chargebacks.items()
        for answered in answers
    }
    for missing in sorted(recorded - chargebacks_published):
        found.append(f"I5 event {missing} never published")
    for extra in sorted(chargebacks_published - recorded):
        found.append(f"I5 event {extra} published without its chargeback being recorded")
    return found


def _event_id(entry: Mapping[str, Any]) -> str:
    return str(json.loads(entry["Detail"])["event_id"])
