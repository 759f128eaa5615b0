"""The simulator's model of Amazon Pay captures and refunds: Amazon's refund rules, with no I/O.

Not thread-safe by itself: `Simulator` holds one lock around every call. Time comes from an injected clock,
so settling is evaluated lazily ("is this refund due?") whenever the model is read or written.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from amazon_pay_refunds.money import over_refund_allowance

MAX_REFUNDS_PER_CAPTURE = 10
REFUND_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_SELLER_REFUND_NOTE = 255
MAX_SOFT_DESCRIPTOR = 16

CAPTURE_STATES = ("Pending", "Declined", "Completed", "Closed")
# OUR EXTENSION: "Chargeback". Amazon documents no RefundType for a chargeback's refund; the service
# treats any type naming a chargeback as one (amazon_pay_refunds/core/classification.py `is_chargeback`).
EXTERNAL_REFUND_TYPES = ("AmazonA-ZRefund", "BuyerCanceled", "SellerInitiated", "Chargeback")
EXTERNAL_REFUND_STATES = ("Completed", "Pending")


class MwsError(Exception):
    """An error Amazon answers with an ErrorResponse: its code, HTTP status, message and fault type."""

    def __init__(self, code: str, http_status: int, message: str, error_type: str = "Sender") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.http_status = http_status
        self.message = message
        self.error_type = error_type


def invalid_parameter(message: str) -> MwsError:
    return MwsError("InvalidParameterValue", 400, message)


def missing_parameter(name: str) -> MwsError:
    return MwsError("MissingParameter", 400, f"The parameter {name} is required but was not provided.")


@dataclass(frozen=True)
class SandboxSimulation:
    """A refund's simulated outcome, parsed from `SellerRefundNote`.

    `times` is OUR EXTENSION (Amazon documents no refund ProcessingFailure simulation): decline only the
    first `times` refunds on the capture that carry this exact note; None declines all of them.
    """

    reason_code: str
    times: int | None = None


def parse_refund_simulation(note: str | None) -> SandboxSimulation | None:
    """None for an ordinary note; InvalidSandboxSimulationSpecified for a simulation Amazon would refuse."""
    if note is None or "SandboxSimulation" not in note:
        return None
    try:
        document = json.loads(note)
    except ValueError:
        raise _bad_simulation("the simulation string is not valid JSON") from None
    if not isinstance(document, dict) or set(document) != {"SandboxSimulation"}:
        raise _bad_simulation('expected {"SandboxSimulation": {...}}')
    spec = document["SandboxSimulation"]
    if not isinstance(spec, dict) or spec.get("State") != "Declined":
        raise _bad_simulation("a refund can only simulate State Declined")
    reason = spec.get("ReasonCode")
    if reason == "AmazonRejected" and set(spec) == {"State", "ReasonCode"}:
        return SandboxSimulation("AmazonRejected")
    # OUR EXTENSION: {"State":"Declined", "ReasonCode":"ProcessingFailure", "Times": N}.
    if reason == "ProcessingFailure" and set(spec) <= {"State", "ReasonCode", "Times"}:
        times = spec.get("Times")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise _bad_simulation("Times must be a positive integer")
        return SandboxSimulation("ProcessingFailure", times)
    raise _bad_simulation(f"unsupported refund simulation {json.dumps(spec)}")


def _bad_simulation(detail: str) -> MwsError:
    return MwsError("InvalidSandboxSimulationSpecified", 400, f"Invalid sandbox simulation: {detail}.")


@dataclass
class Refund:
    amazon_refund_id: str
    seller_id: str
    amazon_capture_id: str
    refund_reference_id: str
    amount: Decimal
    currency_code: str
    seller_refund_note: str | None
    soft_descriptor: str | None
    refund_type: str
    state: str
    created_at: datetime
    updated_at: datetime
    settle_at: datetime | None = None
    planned_decline: str | None = None
    reason_code: str | None = None
    reason_description: str | None = None

    def same_request(self, other: RefundRequest) -> bool:
        return (
            self.amazon_capture_id == other.amazon_capture_id
            and self.amount == other.amount
            and self.currency_code == other.currency_code
            and self.seller_refund_note == other.seller_refund_note
            and self.soft_descriptor == other.soft_descriptor
        )


@dataclass
class Capture:
    amazon_capture_id: str
    seller_id: str
    capture_reference_id: str
    amount: Decimal
    currency_code: str
    state: str
    created_at: datetime
    updated_at: datetime
    reason_code: str | None = None
    refund_ids: list[str] = field(default_factory=list)
    # OUR EXTENSION's bookkeeping: how many refunds carried each ProcessingFailure note so far.
    simulation_uses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    seller_id: str
    amazon_capture_id: str
    refund_reference_id: str
    amount: Decimal
    currency_code: str
    seller_refund_note: str | None = None
    soft_descriptor: str | None = None


@dataclass(frozen=True)
class RefundChange:
    """One refund state change, as an IPN would report it; `previous_state` is None for a new refund."""

    refund: Refund
    previous_state: str | None


RefundObserver = Callable[[RefundChange], None]


class Marketplace:
    """Captures and refunds of every seller, keyed as Amazon keys them."""

    def __init__(self, clock: Callable[[], datetime], settle_seconds: float, seed: int | None = None) -> None:
        self._clock = clock
        self.settle_seconds = settle_seconds
        self._random = random.Random(seed)
        self._observers: list[RefundObserver] = []
        self.captures: dict[str, Capture] = {}
        self.refunds: dict[str, Refund] = {}
        # Reference ids are unique per seller across Authorize, Capture and Refund.
        self._references: dict[tuple[str, str], tuple[str, str]] = {}
        self._sequence = 0

    def on_refund_change(self, observer: RefundObserver) -> None:
        self._observers.append(observer)

    def now(self) -> datetime:
        return self._clock()

    # -- captures (control side: Amazon's Authorize/Capture are out of this simulator's scope) --

    def create_capture(
        self,
        *,
        seller_id: str,
        amount: Decimal,
        currency_code: str,
        state: str = "Completed",
        capture_reference_id: str | None = None,
        reason_code: str | None = None,
    ) -> Capture:
        if state not in CAPTURE_STATES:
            raise ValueError(f"state must be one of {', '.join(CAPTURE_STATES)}")
        order = f"S01-{self._random.randint(1000000, 9999999)}-{self._random.randint(1000000, 9999999)}"
        self._sequence += 1
        capture_id = f"{order}-C{self._sequence:06d}"
        reference = capture_reference_id or f"capture{self._sequence:06d}"
        if not REFUND_REFERENCE_ID.fullmatch(reference):
            raise ValueError("capture_reference_id must be 1-32 characters of A-Z a-z 0-9 - _")
        if (seller_id, reference) in self._references:
            raise ValueError(f"reference id {reference!r} is already used by this seller")
        now = self.now()
        capture = Capture(
            capture_id, seller_id, reference, amount, currency_code, state, now, now, reason_code
        )
        self.captures[capture_id] = capture
        self._references[(seller_id, reference)] = ("capture", capture_id)
        return capture

    def close_capture(self, capture_id: str, reason_code: str = "AmazonClosed") -> Capture:
        capture = self.captures[capture_id]
        capture.state, capture.reason_code, capture.updated_at = "Closed", reason_code, self.now()
        return capture

    # -- refunds --

    def refund(self, request: RefundRequest) -> Refund:
        """Amazon's Refund: idempotent on RefundReferenceId, capped in count and amount, always Pending."""
        self.settle_due()
        simulation = parse_refund_simulation(request.seller_refund_note)
        capture = self.captures.get(request.amazon_capture_id)
        if capture is None or capture.seller_id != request.seller_id:
            raise invalid_parameter(f"The AmazonCaptureId {request.amazon_capture_id} is invalid.")
        used = self._references.get((request.seller_id, request.refund_reference_id))
        if used is not None:
            kind, object_id = used
            if kind != "refund":
                raise MwsError(
                    "DuplicateReferenceId",
                    400,
                    f"The RefundReferenceId {request.refund_reference_id} is already used by another object.",
                )
            existing = self.refunds[object_id]
            if not existing.same_request(request):
                raise MwsError(
                    "DuplicateRequest",
                    400,
                    f"A request with RefundReferenceId {request.refund_reference_id} has already been "
                    "processed with different parameters.",
                )
            return existing
        if request.currency_code != capture.currency_code:
            raise MwsError(
                "CurrencyMismatch",
                400,
                f"The currency {request.currency_code} does not match the capture's {capture.currency_code}.",
            )
        if capture.state != "Completed":
            raise MwsError(
                "CaptureNotRefundable",
                405,
                f"Capture {capture.amazon_capture_id} is in state {capture.state} and cannot be refunded.",
            )
        if len(capture.refund_ids) >= MAX_REFUNDS_PER_CAPTURE:
            raise MwsError(
                "TransactionCountExceeded",
                400,
                f"The maximum of {MAX_REFUNDS_PER_CAPTURE} refunds on this capture has been reached.",
            )
        if self.committed_total(capture) + request.amount > self.refund_cap(capture):
            raise MwsError(
                "TransactionAmountExceeded",
                400,
                "The refund would exceed the captured amount plus the allowed over-refund.",
            )
        now = self.now()
        refund = Refund(
            amazon_refund_id=self._refund_id(capture),
            seller_id=request.seller_id,
            amazon_capture_id=capture.amazon_capture_id,
            refund_reference_id=request.refund_reference_id,
            amount=request.amount,
            currency_code=request.currency_code,
            seller_refund_note=request.seller_refund_note,
            soft_descriptor=request.soft_descriptor,
            refund_type="SellerInitiated",
            state="Pending",
            created_at=now,
            updated_at=now,
            settle_at=now + timedelta(seconds=self.settle_seconds),
            planned_decline=self._planned_decline(capture, request.seller_refund_note, simulation),
        )
        self._add_refund(capture, refund)
        return refund

    def external_refund(
        self, capture_id: str, amount: Decimal, refund_type: str, state: str = "Completed"
    ) -> Refund:
        """A refund not issued through this API (A-to-z claim, buyer cancel, Seller Central, chargeback):
        Completed, or Pending until it settles (Completed) like any refund."""
        if refund_type not in EXTERNAL_REFUND_TYPES:
            raise ValueError(f"refund_type must be one of {', '.join(EXTERNAL_REFUND_TYPES)}")
        if state not in EXTERNAL_REFUND_STATES:
            raise ValueError(f"state must be one of {', '.join(EXTERNAL_REFUND_STATES)}")
        self.settle_due()
        capture = self.captures[capture_id]
        now = self.now()
        self._sequence += 1
        refund = Refund(
            amazon_refund_id=self._refund_id(capture),
            seller_id=capture.seller_id,
            amazon_capture_id=capture_id,
            refund_reference_id=f"external{self._sequence:06d}",
            amount=amount,
            currency_code=capture.currency_code,
            seller_refund_note=None,
            soft_descriptor=None,
            refund_type=refund_type,
            state=state,
            created_at=now,
            updated_at=now,
            settle_at=now + timedelta(seconds=self.settle_seconds) if state == "Pending" else None,
        )
        self._add_refund(capture, refund)
        self._close_if_exhausted(capture)
        return refund

    def settle_due(self, *, force_all: bool = False) -> list[Refund]:
        """Move every due Pending refund to its final state (all Pending ones when forced)."""
        now = self.now()
        settled = []
        for refund in sorted(self.refunds.values(), key=lambda r: (r.created_at, r.amazon_refund_id)):
            if refund.state != "Pending" or refund.settle_at is None:
                continue
            if force_all or refund.settle_at <= now:
                if refund.planned_decline is None:
                    self._set_refund_state(refund, "Completed")
                else:
                    self._set_refund_state(refund, "Declined", refund.planned_decline)
                settled.append(refund)
                self._close_if_exhausted(self.captures[refund.amazon_capture_id])
        return settled

    # -- ledger arithmetic --

    def refund_cap(self, capture: Capture) -> Decimal:
        return capture.amount + over_refund_allowance(capture.amount, capture.currency_code)

    def committed_total(self, capture: Capture) -> Decimal:
        """Pending, Completed and external refunds: what counts against Amazon's cap."""
        return sum(
            (self.refunds[i].amount for i in capture.refund_ids if self.refunds[i].state != "Declined"),
            Decimal(0),
        )

    def refunded_amount(self, capture: Capture) -> Decimal:
        """Amazon's RefundedAmount: the Completed refunds only."""
        return sum(
            (self.refunds[i].amount for i in capture.refund_ids if self.refunds[i].state == "Completed"),
            Decimal(0),
        )

    # -- the single place where a refund's state changes (IPNs will hang off the observers) --

    def _add_refund(self, capture: Capture, refund: Refund) -> None:
        self.refunds[refund.amazon_refund_id] = refund
        self._references[(refund.seller_id, refund.refund_reference_id)] = ("refund", refund.amazon_refund_id)
        capture.refund_ids.append(refund.amazon_refund_id)
        self._notify(refund, None)

    def _set_refund_state(self, refund: Refund, state: str, reason_code: str | None = None) -> None:
        previous = refund.state
        refund.state, refund.reason_code, refund.updated_at = state, reason_code, self.now()
        if reason_code == "AmazonRejected":
            refund.reason_description = "Amazon has rejected the refund."
        elif reason_code == "ProcessingFailure":
            refund.reason_description = "Amazon could not process the refund."
        self._notify(refund, previous)

    def _notify(self, refund: Refund, previous_state: str | None) -> None:
        change = RefundChange(replace(refund), previous_state)
        for observer in list(self._observers):
            observer(change)

    def _close_if_exhausted(self, capture: Capture) -> None:
        if capture.state != "Completed":
            return
        refunds = [self.refunds[i] for i in capture.refund_ids]
        if any(r.state == "Pending" for r in refunds):
            return
        if self.refunded_amount(capture) >= self.refund_cap(capture):
            self.close_capture(capture.amazon_capture_id, "MaxAmountRefunded")
        elif len(refunds) >= MAX_REFUNDS_PER_CAPTURE:
            self.close_capture(capture.amazon_capture_id, "MaxRefundsProcessed")

    def _planned_decline(
        self, capture: Capture, note: str | None, simulation: SandboxSimulation | None
    ) -> str | None:
        if simulation is None:
            return None
        if simulation.reason_code == "ProcessingFailure" and note is not None:
            uses = capture.simulation_uses.get(note, 0) + 1
            capture.simulation_uses[note] = uses
            if simulation.times is not None and uses > simulation.times:
                return None
        return simulation.reason_code

    def _refund_id(self, capture: Capture) -> str:
        self._sequence += 1
        order = capture.amazon_capture_id.rsplit("-", 1)[0]
        return f"{order}-R{self._sequence:06d}"
