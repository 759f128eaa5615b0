"""Item shapes of the refunds table: keys, and domain objects to and from items (plain Python values).

Numbers are `Decimal` (DynamoDB Number, so conditions and arithmetic work on them); amounts are
re-quantised to their currency when read, so "12.50" comes back as Decimal("12.50"). Empty and None
values are left out to keep items small (each write costs one unit per started KB).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from amazon_pay_refunds.core.lifecycle import reservation_state
from amazon_pay_refunds.core.models import (
    Attempt,
    AttemptState,
    CaptureLedger,
    Chargeback,
    ExternalRefund,
    HistoryEntry,
    LateObservation,
    LedgerRefund,
    PaymentApi,
    Refund,
    RefundStatus,
    format_timestamp,
    parse_qualified_id,
    parse_timestamp,
    qualified_id,
)
from amazon_pay_refunds.money import quantize

Item = dict[str, Any]

REFUND_SK = "REFUND"
LEDGER_SK = "LEDGER"
IPN_SK = "IPN"
CHARGEBACKS_SK = "CHARGEBACKS"
OPEN_GSI1PK = "OPEN"


def refund_key(refund_id: str) -> Item:
    return {"pk": f"REFUND#{refund_id}", "sk": REFUND_SK}


def ledger_key(ledger_id: str) -> Item:
    """`CAPTURE#{capture id}` for a v1 capture, `CHARGE#{charge id}` for a v2 charge (`qualified_id`):
    a capture and a charge with the same id string never share a ledger."""
    api, payment_id = parse_qualified_id(ledger_id)
    prefix = "CHARGE#" if api is PaymentApi.V2 else "CAPTURE#"
    return {"pk": f"{prefix}{payment_id}", "sk": LEDGER_SK}


def ledger_id_of(item: Mapping[str, Any]) -> str:
    pk = str(item["pk"])
    if pk.startswith("CHARGE#"):
        return qualified_id(PaymentApi.V2, pk.removeprefix("CHARGE#"))
    return pk.removeprefix("CAPTURE#")


def ipn_key(notification_reference_id: str) -> Item:
    return {"pk": f"IPN#{notification_reference_id}", "sk": IPN_SK}


def chargebacks_key(seller_id: str, charge_permission_id: str) -> Item:
    """The chargebacks recorded on one API v2 charge permission of one seller (CHARGEBACK IPNs)."""
    return {"pk": f"CHARGE_PERMISSION#{seller_id}#{charge_permission_id}", "sk": CHARGEBACKS_SK}


def is_chargebacks_item(item: Mapping[str, Any]) -> bool:
    return item.get("sk") == CHARGEBACKS_SK and str(item.get("pk", "")).startswith("CHARGE_PERMISSION#")


def is_refund_item(item: Mapping[str, Any]) -> bool:
    return item.get("sk") == REFUND_SK and str(item.get("pk", "")).startswith("REFUND#")


def is_ledger_item(item: Mapping[str, Any]) -> bool:
    return item.get("sk") == LEDGER_SK and str(item.get("pk", "")).startswith(("CAPTURE#", "CHARGE#"))


def _compact(values: Mapping[str, Any]) -> Item:
    return {k: v for k, v in values.items() if v is not None and v != {} and v != [] and v is not False}


# --- refunds ----------------------------------------------------------------------------------------------


def refund_to_item(refund: Refund) -> Item:
    item = refund_key(refund.refund_id)
    if not refund.is_final:
        # Sparse index of open refunds; its keys never change while the refund is open (no index writes).
        item["gsi1pk"] = OPEN_GSI1PK
        item["gsi1sk"] = f"{format_timestamp(refund.created_at)}#{refund.refund_id}"
    item.update(
        _compact(
            {
                "seller_id": refund.seller_id,
                "amazon_capture_id": refund.amazon_capture_id,
                "amount": refund.amount,
                "currency_code": refund.currency_code,
                "seller_refund_note": refund.seller_refund_note,
                "soft_descriptor": refund.soft_descriptor,
                "metadata": json.dumps(refund.metadata, separators=(",", ":")) if refund.metadata else None,
                "status": refund.status.value,
                "reason_code": refund.reason_code,
                "attempts": [_attempt_to_item(a) for a in refund.attempts],
                "history": [_history_to_item(h) for h in refund.history],
                "late": [_late_to_item(o) for o in refund.late_observations],
                "created_at": format_timestamp(refund.created_at),
                "updated_at": format_timestamp(refund.updated_at),
                "fingerprint": refund.request_fingerprint,
                "reservation_pending": refund.reservation_pending,
                "api": refund.api.value if refund.api is not PaymentApi.V1 else None,
            }
        )
    )
    item["version"] = Decimal(refund.version)
    return item


def refund_from_item(item: Mapping[str, Any]) -> Refund:
    currency = str(item["currency_code"])
    metadata = item.get("metadata")
    return Refund(
        refund_id=str(item["pk"]).removeprefix("REFUND#"),
        seller_id=str(item["seller_id"]),
        amazon_capture_id=str(item["amazon_capture_id"]),
        amount=quantize(Decimal(item["amount"]), currency),
        currency_code=currency,
        seller_refund_note=item.get("seller_refund_note"),
        soft_descriptor=item.get("soft_descriptor"),
        metadata=json.loads(metadata) if metadata else {},
        status=RefundStatus(item["status"]),
        reason_code=item.get("reason_code"),
        attempts=tuple(_attempt_from_item(a) for a in item["attempts"]),
        history=tuple(_history_from_item(h) for h in item["history"]),
        created_at=parse_timestamp(item["created_at"]),
        updated_at=parse_timestamp(item["updated_at"]),
        request_fingerprint=str(item["fingerprint"]),
        late_observations=tuple(_late_from_item(o) for o in item.get("late", ())),
        version=int(item["version"]),
        reservation_pending=bool(item.get("reservation_pending", False)),
        api=PaymentApi(item.get("api", PaymentApi.V1.value)),
    )


def _attempt_to_item(a: Attempt) -> Item:
    return _compact(
        {
            "attempt": Decimal(a.attempt),
            "refund_reference_id": a.refund_reference_id,
            "amazon_refund_id": a.amazon_refund_id,
            "state": a.state.value,
            "reason_code": a.reason_code,
            "requested_at": format_timestamp(a.requested_at),
            "updated_at": format_timestamp(a.updated_at),
        }
    )


def _attempt_from_item(m: Mapping[str, Any]) -> Attempt:
    return Attempt(
        attempt=int(m["attempt"]),
        refund_reference_id=str(m["refund_reference_id"]),
        amazon_refund_id=m.get("amazon_refund_id"),
        state=AttemptState(m["state"]),
        reason_code=m.get("reason_code"),
        requested_at=parse_timestamp(m["requested_at"]),
        updated_at=parse_timestamp(m["updated_at"]),
    )


def _history_to_item(h: HistoryEntry) -> Item:
    return _compact(
        {
            "at": format_timestamp(h.at),
            "from": None if h.from_ is None else h.from_.value,
            "to": h.to.value,
            "cause": h.cause,
            "reason_code": h.reason_code,
            "declined": h.declined,
            "detail": dict(h.detail) if h.detail else None,
            "caller": h.caller,
        }
    )


def _history_from_item(m: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        at=parse_timestamp(m["at"]),
        from_=RefundStatus(m["from"]) if "from" in m else None,
        to=RefundStatus(m["to"]),
        cause=str(m["cause"]),
        reason_code=m.get("reason_code"),
        declined=bool(m.get("declined", False)),
        detail={str(k): str(v) for k, v in m["detail"].items()} if "detail" in m else None,
        caller=str(m["caller"]) if "caller" in m else None,
    )


def _late_to_item(o: LateObservation) -> Item:
    return _compact(
        {
            "at": format_timestamp(o.at),
            "cause": o.cause,
            "attempt": None if o.attempt is None else Decimal(o.attempt),
            "state": o.state.value,
            "reason_code": o.reason_code,
            "amazon_refund_id": o.amazon_refund_id,
        }
    )


def _late_from_item(m: Mapping[str, Any]) -> LateObservation:
    return LateObservation(
        at=parse_timestamp(m["at"]),
        cause=str(m["cause"]),
        attempt=int(m["attempt"]) if "attempt" in m else None,
        state=AttemptState(m["state"]),
        reason_code=m.get("reason_code"),
        amazon_refund_id=m.get("amazon_refund_id"),
    )


# --- capture ledgers -------------------------------------------------------------------------------------
# The item keeps what conditions need: `available` (= limit - reserved - external) and `reserved` (our
# refunds' in-flight + completed money). How `reserved` splits into in-flight and completed is derived
# from the refunds themselves, so completing a refund does not write the ledger item.


def ledger_to_item(ledger: CaptureLedger, opened_at: datetime) -> Item:
    item = ledger_key(ledger.amazon_capture_id)
    item.update(
        {
            "seller_id": ledger.seller_id,
            "currency_code": ledger.currency_code,
            "captured": ledger.captured,
            "allow_over_refund": ledger.allow_over_refund,
            "available": ledger.available,
            "reserved": ledger.in_flight + ledger.completed,
            "external": ledger.external,
            "externals": {e.amazon_refund_id: external_to_item(e) for e in ledger.external_refunds},
            "opened_at": format_timestamp(opened_at),
        }
    )
    if ledger.charge_permission_id is not None:
        item["charge_permission_id"] = ledger.charge_permission_id
    if ledger.refunds:
        item["refund_ids"] = {r.refund_id for r in ledger.refunds}
    return item


def external_to_item(e: ExternalRefund) -> Item:
    return _compact(
        {
            "amount": e.amount,
            "refund_type": e.refund_type,
            "state": e.state,
            "recorded_at": format_timestamp(e.recorded_at),
        }
    )


def externals_from_item(item: Mapping[str, Any]) -> tuple[ExternalRefund, ...]:
    currency = str(item["currency_code"])
    entries = [
        ExternalRefund(
            amazon_refund_id=str(refund_id),
            amount=quantize(Decimal(m["amount"]), currency) if "amount" in m else None,
            refund_type=str(m["refund_type"]),
            recorded_at=parse_timestamp(m["recorded_at"]),
            state=m.get("state"),
        )
        for refund_id, m in item.get("externals", {}).items()
    ]
    return tuple(sorted(entries, key=lambda e: (e.recorded_at, e.amazon_refund_id)))


def external_updated_at(item: Mapping[str, Any], amazon_refund_id: str) -> datetime | None:
    """When a recorded external refund's state last changed (`settled_at`), if it did."""
    entry = item.get("externals", {}).get(amazon_refund_id, {})
    return parse_timestamp(entry["settled_at"]) if "settled_at" in entry else None


def ledger_from_item(item: Mapping[str, Any], refunds: Mapping[str, Refund]) -> CaptureLedger:
    """The ledger; `refunds` are this capture's refund items (by refund_id), to split in-flight/completed."""
    currency = str(item["currency_code"])
    lines = []
    for refund_id in sorted(item.get("refund_ids", ())):
        refund = refunds.get(refund_id)
        if refund is not None:
            lines.append(LedgerRefund(refund_id, refund.amount, refund.status, reservation_state(refund)))
    lines.sort(key=lambda line: (refunds[line.refund_id].created_at, line.refund_id))
    return CaptureLedger(
        amazon_capture_id=ledger_id_of(item),
        seller_id=str(item["seller_id"]),
        currency_code=currency,
        captured=quantize(Decimal(item["captured"]), currency),
        in_flight=sum((line.amount for line in lines if line.reservation == "in_flight"), Decimal(0)),
        completed=sum((line.amount for line in lines if line.reservation == "completed"), Decimal(0)),
        external=quantize(Decimal(item["external"]), currency),
        allow_over_refund=bool(item.get("allow_over_refund", False)),
        refunds=tuple(lines),
        external_refunds=externals_from_item(item),
        charge_permission_id=item.get("charge_permission_id"),
    )


def chargebacks_from_item(item: Mapping[str, Any] | None) -> tuple[Chargeback, ...]:
    """The chargebacks of a charge permission's item (`chargebacks`: id → notified_at), oldest first."""
    entries = (item or {}).get("chargebacks", {})
    found = [Chargeback(str(i), parse_timestamp(str(at))) for i, at in entries.items()]
    return tuple(sorted(found, key=lambda c: (c.notified_at, c.chargeback_id)))


def available_from_item(item: Mapping[str, Any]) -> Decimal:
    return quantize(Decimal(item["available"]), str(item["currency_code"]))


# --- the reconciler's check record on a refund item -------------------------------------------------------
# Not part of `Refund`: written alone by `RefundStore.record_poll`, dropped by the next full write of the
# refund (any change), which restarts the reconciler's backoff.

POLLS = "polls"
POLLED_AT = "polled_at"


def poll_record_from_item(item: Mapping[str, Any]) -> tuple[int, datetime | None]:
    """(checks so far, the last one's time) of a refund item; (0, None) when it has none."""
    polled_at = item.get(POLLED_AT)
    return int(item.get(POLLS, 0)), parse_timestamp(polled_at) if polled_at else None
