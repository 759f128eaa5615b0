"""The refund and capture-ledger models, and their public JSON resources (CONTRACT §3)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from amazon_pay_refunds.money import format_amount, over_refund_allowance

SOURCE = "amazon-pay-refunds"


class RefundStatus(StrEnum):
    REQUESTED = "Requested"
    PENDING = "Pending"
    RETRY_SCHEDULED = "RetryScheduled"
    MANUAL_ACTION_REQUIRED = "ManualActionRequired"
    COMPLETED = "Completed"
    FAILED = "Failed"
    RESOLVED_OUT_OF_BAND = "ResolvedOutOfBand"


FINAL_STATUSES = frozenset({RefundStatus.COMPLETED, RefundStatus.FAILED, RefundStatus.RESOLVED_OUT_OF_BAND})
OPEN_STATUSES = tuple(s for s in RefundStatus if s not in FINAL_STATUSES)


class PaymentApi(StrEnum):
    """Which Amazon Pay API a refund is made through: v1 (MWS, on a capture) or v2 (Checkout v2, on a
    charge). The one place that says which; adapters/ and composition.py route on it."""

    V1 = "v1"
    V2 = "v2"


# v1 and v2 ids share one format (S01-…-C… for a capture and a charge, …-R… for refunds), so wherever an
# Amazon object id crosses a port or keys a ledger it carries its API: a v1 id as Amazon wrote it, a v2 id
# as `v2:{id}`. The Amazon Pay router (composition.py) dispatches on it; the store keys a v2 charge's
# ledger under `CHARGE#` (adapters/dynamodb/items.ledger_key), so a capture and a charge never collide.
_V2_PREFIX = "v2:"


def qualified_id(api: PaymentApi, amazon_id: str) -> str:
    """An Amazon object id with its API: itself for v1, `v2:{id}` for v2 (inverse: `parse_qualified_id`)."""
    return f"{_V2_PREFIX}{amazon_id}" if api is PaymentApi.V2 else amazon_id


def parse_qualified_id(value: str) -> tuple[PaymentApi, str]:
    """`(api, Amazon's id)` of a qualified id."""
    if value.startswith(_V2_PREFIX):
        return PaymentApi.V2, value.removeprefix(_V2_PREFIX)
    return PaymentApi.V1, value


def payment_fields(api: PaymentApi, amazon_payment_id: str) -> dict[str, Any]:
    """How a resource names what is refunded: `amazon_capture_id` (v1, as before v2 existed) or
    `amazon_charge_id` (v2); the name says which API."""
    if api is PaymentApi.V2:
        return {"amazon_charge_id": amazon_payment_id}
    return {"amazon_capture_id": amazon_payment_id}


class AttemptState(StrEnum):
    REQUESTED = "Requested"
    PENDING = "Pending"
    COMPLETED = "Completed"
    DECLINED = "Declined"


TERMINAL_ATTEMPT_STATES = frozenset({AttemptState.COMPLETED, AttemptState.DECLINED})


def reported_attempt_state(state: str) -> AttemptState | None:
    """Amazon's RefundStatus.State (Pending, Completed, Declined) as an AttemptState: the one mapping.

    None for anything else ("Requested" is this service's own state, never Amazon's). What None means is the
    caller's to say: the Refund call's answer and a poll stay Pending (an IPN or a later poll settles the
    attempt); an IPN is answered as unreadable; a retry step treats the outcome as not known yet.
    """
    try:
        reported = AttemptState(state)
    except ValueError:
        return None
    return None if reported is AttemptState.REQUESTED else reported


class DetailType(StrEnum):
    """EventBridge detail-types (CONTRACT §4)."""

    REQUESTED = "Refund Requested"
    PENDING = "Refund Pending"
    COMPLETED = "Refund Completed"
    DECLINED = "Refund Declined"
    RETRY_SCHEDULED = "Refund Retry Scheduled"
    MANUAL_ACTION_REQUIRED = "Refund Requires Manual Action"
    FAILED = "Refund Failed"
    RESOLVED_OUT_OF_BAND = "Refund Resolved Out Of Band"
    EXTERNAL_REFUND_DETECTED = "External Refund Detected"
    EXTERNAL_REFUND_UPDATED = "External Refund Updated"  # its state moved on (API v2: settled or declined)
    CHARGEBACK_RECORDED = "Chargeback Recorded"  # API v2: a CHARGEBACK IPN on a charge permission


_ENTERED: dict[RefundStatus, DetailType] = {
    RefundStatus.REQUESTED: DetailType.REQUESTED,
    RefundStatus.PENDING: DetailType.PENDING,
    RefundStatus.RETRY_SCHEDULED: DetailType.RETRY_SCHEDULED,
    RefundStatus.MANUAL_ACTION_REQUIRED: DetailType.MANUAL_ACTION_REQUIRED,
    RefundStatus.COMPLETED: DetailType.COMPLETED,
    RefundStatus.FAILED: DetailType.FAILED,
    RefundStatus.RESOLVED_OUT_OF_BAND: DetailType.RESOLVED_OUT_OF_BAND,
}


def format_timestamp(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, e.g. `2024-05-01T12:00:00.000Z` (sorts as text)."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def request_fingerprint(body: Mapping[str, Any]) -> str:
    """A hash of the normalised request body: equal bodies replay (200), different ones conflict (409).

    The caller normalises first (amount as the quantised string, the default seller filled in).
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Attempt:
    """One Amazon `Refund` call of a logical refund, under its own `RefundReferenceId`."""

    attempt: int
    refund_reference_id: str
    amazon_refund_id: str | None
    state: AttemptState
    reason_code: str | None
    requested_at: datetime
    updated_at: datetime

    def to_resource(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "refund_reference_id": self.refund_reference_id,
            "amazon_refund_id": self.amazon_refund_id,
            "state": self.state.value,
            "reason_code": self.reason_code,
            "requested_at": format_timestamp(self.requested_at),
            "updated_at": format_timestamp(self.updated_at),
        }


@dataclass(frozen=True)
class HistoryEntry:
    """A stored status transition with its cause; each one is published (see `detail_types`).

    `from_` is None for the creation entry. `declined` marks a transition caused by a declined attempt,
    which is published as `Refund Declined` (with `reason_code`) before the status it led to. `caller`:
    who made an API transition - the signing principal's ARN, or `api-key:{id}` (never a key itself).
    """

    at: datetime
    from_: RefundStatus | None
    to: RefundStatus
    cause: str
    reason_code: str | None = None
    declined: bool = False
    detail: Mapping[str, str] | None = None
    caller: str | None = None

    @property
    def detail_types(self) -> tuple[DetailType, ...]:
        entered = _ENTERED[self.to]
        return (DetailType.DECLINED, entered) if self.declined else (entered,)

    def to_resource(self) -> dict[str, Any]:
        return {
            "at": format_timestamp(self.at),
            "from": None if self.from_ is None else self.from_.value,
            "to": self.to.value,
            "cause": self.cause,
            **({"caller": self.caller} if self.caller is not None else {}),
        }


@dataclass(frozen=True)
class LateObservation:
    """An observation that arrived too late (or contradicted a final attempt state): kept for audit only."""

    at: datetime
    cause: str
    attempt: int | None
    state: AttemptState
    reason_code: str | None = None
    amazon_refund_id: str | None = None


@dataclass(frozen=True)
class Refund:
    """A logical refund: the client's intent, its Amazon attempts and its audit trail.

    `amazon_capture_id` is the Amazon payment refunded: a v1 capture id, or a v2 charge id when `api` is
    v2 (the resource then names it `amazon_charge_id`); `ledger_id` is the ledger it reserves on.
    """

    refund_id: str
    seller_id: str
    amazon_capture_id: str
    amount: Decimal
    currency_code: str
    seller_refund_note: str | None
    soft_descriptor: str | None
    metadata: Mapping[str, Any]
    status: RefundStatus
    reason_code: str | None
    attempts: tuple[Attempt, ...]
    history: tuple[HistoryEntry, ...]
    created_at: datetime
    updated_at: datetime
    request_fingerprint: str
    late_observations: tuple[LateObservation, ...] = ()
    version: int = 0
    # Stored while Amazon could not be asked about the capture (its ledger not opened yet): nothing is
    # reserved, so the refund must not be sent to Amazon until the reservation is taken.
    reservation_pending: bool = False
    api: PaymentApi = PaymentApi.V1

    @property
    def ledger_id(self) -> str:
        """The payment as the ports name it (`qualified_id`): its ledger's key, the target of Amazon calls."""
        return qualified_id(self.api, self.amazon_capture_id)

    def amazon_object(self, amazon_id: str) -> str:
        """Another Amazon object of this refund's API (e.g. an attempt's refund id) as the ports name it."""
        return qualified_id(self.api, amazon_id)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def latest_attempt(self) -> Attempt:
        return self.attempts[-1]

    @property
    def seen_notifications(self) -> frozenset[str]:
        """NotificationReferenceIds of IPNs already applied or recorded for this refund."""
        causes = [h.cause for h in self.history] + [o.cause for o in self.late_observations]
        return frozenset(c.removeprefix("ipn:") for c in causes if c.startswith("ipn:"))

    def attempt(self, number: int) -> Attempt | None:
        return next((a for a in self.attempts if a.attempt == number), None)

    def to_resource(self) -> dict[str, Any]:
        return {
            "refund_id": self.refund_id,
            "seller_id": self.seller_id,
            **payment_fields(self.api, self.amazon_capture_id),
            "amount": format_amount(self.amount, self.currency_code),
            "currency_code": self.currency_code,
            "status": self.status.value,
            "reason_code": self.reason_code,
            "attempts": [a.to_resource() for a in self.attempts],
            "history": [h.to_resource() for h in self.history],
            "metadata": dict(self.metadata),
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
        }


ReservationState = Literal["in_flight", "completed", "released"]
# The type of external refunds recorded unread (ledgers opened before opening read the capture's refunds).
UNREAD_REFUND_TYPE = "Opening"


@dataclass(frozen=True)
class LedgerRefund:
    """One of this service's refunds on a capture, as the ledger counts it."""

    refund_id: str
    amount: Decimal
    status: RefundStatus
    reservation: ReservationState


@dataclass(frozen=True)
class ExternalRefund:
    """A refund this service did not issue (A-to-z claim, chargeback, Seller Central, the seller's other
    systems), with its amount, type and state when it was recorded (core/classification.py).

    `amount` is None only on entries of ledgers opened before refunds on the capture were read at opening
    (type `Opening`): their amount and type are unknown until read (`is_read`).
    """

    amazon_refund_id: str
    amount: Decimal | None
    refund_type: str
    recorded_at: datetime
    state: str | None = None

    @property
    def is_read(self) -> bool:
        return self.amount is not None and self.refund_type != UNREAD_REFUND_TYPE


@dataclass(frozen=True)
class Chargeback:
    """A chargeback Amazon notified on an API v2 charge permission (a `CHARGEBACK` IPN): its id and when
    its IPN was first answered. Recorded per (seller, charge permission); any one, whatever its state,
    forbids the ProcessingFailure retry on every charge under that permission (core/classification.py)."""

    chargeback_id: str
    notified_at: datetime

    def to_resource(self) -> dict[str, Any]:
        return {"chargeback_id": self.chargeback_id, "notified_at": format_timestamp(self.notified_at)}


@dataclass(frozen=True)
class CaptureLedger:
    """What has been refunded, or is being refunded, on one Amazon capture (or v2 charge: then
    `amazon_capture_id` is `v2:{charge id}`, see `qualified_id`)."""

    amazon_capture_id: str
    seller_id: str
    currency_code: str
    captured: Decimal
    in_flight: Decimal = Decimal(0)
    completed: Decimal = Decimal(0)
    external: Decimal = Decimal(0)
    allow_over_refund: bool = False
    refunds: tuple[LedgerRefund, ...] = ()
    external_refunds: tuple[ExternalRefund, ...] = field(default=())
    # API v2: the charge's charge permission (Get Charge's chargePermissionId; None for v1 captures and
    # for charge ledgers opened before it was kept) and the chargebacks recorded on it.
    charge_permission_id: str | None = None
    chargebacks: tuple[Chargeback, ...] = ()

    @property
    def limit(self) -> Decimal:
        """The most that may ever be refunded on the capture, all refunds counted."""
        if not self.allow_over_refund:
            return self.captured
        return self.captured + over_refund_allowance(self.captured, self.currency_code)

    @property
    def available(self) -> Decimal:
        """May be negative after an external refund overdrew the capture; reservations then refuse."""
        return self.limit - self.in_flight - self.completed - self.external

    @property
    def refund_ids(self) -> tuple[str, ...]:
        return tuple(r.refund_id for r in self.refunds)

    def to_resource(self) -> dict[str, Any]:
        def amount(value: Decimal) -> str:
            return format_amount(value, self.currency_code)

        return {
            **payment_fields(*parse_qualified_id(self.amazon_capture_id)),
            "seller_id": self.seller_id,
            "currency_code": self.currency_code,
            "captured": amount(self.captured),
            "completed": amount(self.completed),
            "in_flight": amount(self.in_flight),
            "external": amount(self.external),
            "available": amount(self.available),
            "over_refund_allowed": self.allow_over_refund,
            "refunds": [
                {"refund_id": r.refund_id, "amount": amount(r.amount), "status": r.status.value}
                for r in self.refunds
            ],
            "external_refunds": [
                {
                    "amazon_refund_id": e.amazon_refund_id,
                    "amount": None if e.amount is None else amount(e.amount),
                    "refund_type": e.refund_type,
                    "state": e.state,
                    "recorded_at": format_timestamp(e.recorded_at),
                }
                for e in self.external_refunds
            ],
            **(
                {
                    "charge_permission_id": self.charge_permission_id,
                    "chargebacks": [c.to_resource() for c in self.chargebacks],
                }
                if parse_qualified_id(self.amazon_capture_id)[0] is PaymentApi.V2
                else {}
            ),
        }
