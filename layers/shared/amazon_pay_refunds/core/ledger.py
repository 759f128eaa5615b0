"""The capture ledger's rules: what may be reserved, and how a refund's money moves between buckets.

Buckets per capture: `in_flight` (reserved by a refund not yet Completed), `completed`, `external` (refunds
we did not issue). Invariant (CONTRACT §7.1): in_flight + completed + external <= limit, where limit is the
captured amount plus Amazon's allowance only when the deployment enables over-refunds. Reservations are
refused rather than overdraw; an external refund is a fact that has already happened, so it is always
recorded, even when it overdraws: `available` may then be zero or negative and every later reservation
refuses until releases bring it back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from amazon_pay_refunds.core.classification import ReportedRefund, counts_against_capture
from amazon_pay_refunds.core.models import (
    CaptureLedger,
    ExternalRefund,
    LedgerRefund,
    RefundStatus,
    ReservationState,
)


class LedgerError(Exception):
    """A reservation the ledger refuses; `code` is the API error code."""

    code = "LedgerError"


class RefundExceedsCapture(LedgerError):
    code = "RefundExceedsCapture"

    def __init__(self, requested: Decimal, available: Decimal) -> None:
        super().__init__(f"refund of {requested} exceeds the {available} still available on the capture")
        self.requested = requested
        self.available = available


class CurrencyMismatch(LedgerError):
    code = "CurrencyMismatch"

    def __init__(self, requested: str, captured: str) -> None:
        super().__init__(f"refund currency {requested} differs from the capture's {captured}")
        self.requested = requested
        self.captured = captured


class EffectKind(StrEnum):
    RESERVE = "reserve"  # -> in_flight
    COMPLETE = "complete"  # in_flight -> completed
    RELEASE = "release"  # in_flight -> available again


@dataclass(frozen=True)
class LedgerEffect:
    """What a refund transition does to its capture's ledger."""

    kind: EffectKind
    refund_id: str
    amount: Decimal

    @property
    def changes_available(self) -> bool:
        """Completion only relabels reserved money; reserve and release move `available`."""
        return self.kind is not EffectKind.COMPLETE


@dataclass(frozen=True)
class LedgerSeed:
    """What Amazon says about a capture we have not refunded yet: opens its ledger.

    `refunds` are the refunds already on the capture (its IdList, each read with GetRefundDetails), all
    external (core/classification.py): Pending and Completed ones count against the capture.
    """

    amazon_capture_id: str
    seller_id: str
    currency_code: str
    captured: Decimal
    refunds: tuple[ReportedRefund, ...] = ()
    allow_over_refund: bool = False
    charge_permission_id: str | None = None  # API v2: Get Charge's chargePermissionId


def open_ledger(seed: LedgerSeed, at: datetime) -> CaptureLedger:
    """A new ledger; the refunds Amazon already reports on the capture are recorded as external."""
    ledger = CaptureLedger(
        amazon_capture_id=seed.amazon_capture_id,
        seller_id=seed.seller_id,
        currency_code=seed.currency_code,
        captured=seed.captured,
        allow_over_refund=seed.allow_over_refund,
        charge_permission_id=seed.charge_permission_id,
    )
    for refund in seed.refunds:
        if refund.currency_code != seed.currency_code:
            raise CurrencyMismatch(refund.currency_code, seed.currency_code)
        ledger = record_external(
            ledger, refund.amazon_refund_id, refund.amount, refund.refund_type, at, refund.state
        )
    return ledger


def check_reservation(ledger: CaptureLedger, amount: Decimal, currency_code: str) -> None:
    """Raise CurrencyMismatch or RefundExceedsCapture when `amount` may not be reserved."""
    if amount <= 0:
        raise ValueError("a reservation must be positive")
    if currency_code != ledger.currency_code:
        raise CurrencyMismatch(currency_code, ledger.currency_code)
    if amount > ledger.available:
        raise RefundExceedsCapture(amount, max(ledger.available, Decimal(0)))


def reserve(ledger: CaptureLedger, refund_id: str, amount: Decimal, currency_code: str) -> CaptureLedger:
    if refund_id in ledger.refund_ids:
        raise ValueError(f"refund {refund_id} already holds a reservation on this capture")
    check_reservation(ledger, amount, currency_code)
    line = LedgerRefund(refund_id, amount, RefundStatus.REQUESTED, "in_flight")
    return replace(ledger, in_flight=ledger.in_flight + amount, refunds=(*ledger.refunds, line))


def complete(ledger: CaptureLedger, refund_id: str) -> CaptureLedger:
    """The refund's reserved amount is now refunded (in_flight -> completed); `available` is unchanged."""
    line = _in_flight_line(ledger, refund_id)
    return _relabel(ledger, line, "completed", in_flight=-line.amount, completed=line.amount)


def release(ledger: CaptureLedger, refund_id: str) -> CaptureLedger:
    """Nothing was refunded: the reserved amount is available again."""
    line = _in_flight_line(ledger, refund_id)
    return _relabel(ledger, line, "released", in_flight=-line.amount)


def record_external(
    ledger: CaptureLedger,
    amazon_refund_id: str,
    amount: Decimal,
    refund_type: str,
    at: datetime,
    state: str | None = None,
) -> CaptureLedger:
    """Record a refund we did not issue, once per AmazonRefundId; count its amount unless it was Declined,
    even if that overdraws the capture."""
    if any(e.amazon_refund_id == amazon_refund_id for e in ledger.external_refunds):
        return ledger
    entry = ExternalRefund(amazon_refund_id, amount, refund_type, at, state)
    counted = amount if counts_against_capture(state) else Decimal(0)
    return replace(
        ledger, external=ledger.external + counted, external_refunds=(*ledger.external_refunds, entry)
    )


# How a refund by others recorded by its id (API v2: its IPN, while Amazon still had it `RefundInitiated`)
# may change state later: Pending → Completed when Amazon refunded it (it still counts), Pending → Declined
# when Amazon declined it. Amazon's v2 refund states are RefundInitiated → Refunded | Declined, both final:
# a Declined refund moved no money (Amazon's own cap no longer counts it), so its amount is available
# again, as a Declined external refund on a v1 capture never counted. A person who redoes it makes a new
# refund with its own id, counted when it is seen. (Keeping it counted would block the buyer's later
# refunds on that charge for a refund that never happened.)
EXTERNAL_STATE_CHANGES = frozenset({("Pending", "Completed"), ("Pending", "Declined")})


def settle_external(ledger: CaptureLedger, amazon_refund_id: str, state: str) -> CaptureLedger:
    """The recorded external refund `amazon_refund_id` in its new `state`, when EXTERNAL_STATE_CHANGES
    allow it; otherwise (already in that state, no such entry, any other change) the ledger unchanged.
    A Declined one is no longer counted against the capture."""
    entry = next((e for e in ledger.external_refunds if e.amazon_refund_id == amazon_refund_id), None)
    if entry is None or (entry.state, state) not in EXTERNAL_STATE_CHANGES:
        return ledger
    settled = replace(entry, state=state)
    released = entry.amount if entry.amount is not None and not counts_against_capture(state) else Decimal(0)
    return replace(
        ledger,
        external=ledger.external - released,
        external_refunds=tuple(settled if e is entry else e for e in ledger.external_refunds),
    )


def apply_effect(ledger: CaptureLedger, effect: LedgerEffect, currency_code: str) -> CaptureLedger:
    if effect.kind is EffectKind.RESERVE:
        return reserve(ledger, effect.refund_id, effect.amount, currency_code)
    if effect.kind is EffectKind.COMPLETE:
        return complete(ledger, effect.refund_id)
    return release(ledger, effect.refund_id)


def _in_flight_line(ledger: CaptureLedger, refund_id: str) -> LedgerRefund:
    line = next((r for r in ledger.refunds if r.refund_id == refund_id), None)
    if line is None or line.reservation != "in_flight":
        raise ValueError(f"refund {refund_id} holds no in-flight reservation on this capture")
    return line


def _relabel(
    ledger: CaptureLedger,
    line: LedgerRefund,
    reservation: ReservationState,
    *,
    in_flight: Decimal = Decimal(0),
    completed: Decimal = Decimal(0),
) -> CaptureLedger:
    status = RefundStatus.COMPLETED if reservation == "completed" else line.status
    new_line = replace(line, reservation=reservation, status=status)
    refunds = tuple(new_line if r.refund_id == line.refund_id else r for r in ledger.refunds)
    return replace(
        ledger,
        in_flight=ledger.in_flight + in_flight,
        completed=ledger.completed + completed,
        refunds=refunds,
    )
