"""Refund lifecycle: which transition an observation causes, and what it does to the capture's ledger.

Pure functions. Amazon's reports (the Refund answer, IPNs, GetRefundDetails polls) are facts: they never
raise, and whatever they cannot change is at most recorded in `late_observations`. Commands (a new attempt,
manual action, an operator's resolution) raise TransitionNotAllowed when the refund is not in a state that
permits them, and are idempotent when replayed.

Status mapping (docs/DESIGN.md "Refund lifecycle"):
- Attempt accepted/Pending → `Pending`; an attempt Completed → `Completed` (from any non-final status).
- Attempt Declined `ProcessingFailure` while retries remain (attempt n ≤ max retries) → `RetryScheduled`;
  any other decline → `ManualActionRequired`. Both publish `Refund Declined` first.
- Amazon refuses the first attempt outright → `Failed` (reservation released); a refused retry, or a
  refusal that means the reference id was already used, → `ManualActionRequired`.
- The reservation stays held in `RetryScheduled` and `ManualActionRequired` (money might still move); it
  is released only when no attempt can still complete: `Failed`, or `ResolvedOutOfBand` with every attempt
  Declined.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from amazon_pay_refunds.core.ledger import EffectKind, LedgerEffect
from amazon_pay_refunds.core.models import (
    TERMINAL_ATTEMPT_STATES,
    Attempt,
    AttemptState,
    HistoryEntry,
    LateObservation,
    PaymentApi,
    Refund,
    RefundStatus,
    ReservationState,
)
from amazon_pay_refunds.core.references import (
    MAX_ATTEMPT,
    InvalidRefundId,
    is_valid_refund_id,
    refund_reference_id,
)

PROCESSING_FAILURE = "ProcessingFailure"
# Refusals saying the RefundReferenceId was already used: money may have moved under it, so never `Failed`.
AMBIGUOUS_REFUSALS = frozenset({"DuplicateRequest", "DuplicateReferenceId"})
MAX_LATE_OBSERVATIONS = 20

_RANK = {
    AttemptState.REQUESTED: 0,
    AttemptState.PENDING: 1,
    AttemptState.COMPLETED: 2,
    AttemptState.DECLINED: 2,
}


class TransitionNotAllowed(Exception):
    """A command that the refund's current status does not permit (e.g. resolving a Pending refund)."""

    def __init__(self, refund: Refund, message: str) -> None:
        super().__init__(f"refund {refund.refund_id} is {refund.status.value}: {message}")
        self.refund = refund


# --- observations (Amazon's facts) -------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptAccepted:
    """Amazon's answer to our Refund call for `attempt` (State is Pending, or Declined in simulations)."""

    attempt: int
    amazon_refund_id: str
    state: AttemptState = AttemptState.PENDING
    reason_code: str | None = None
    cause: str = "amazon:Refund"


@dataclass(frozen=True)
class AttemptOutcome:
    """An attempt's state from an IPN (`ipn:<NotificationReferenceId>`) or a poll (`poll:GetRefundDetails`).

    Matched by `amazon_refund_id`, else by `refund_reference_id`.
    """

    state: AttemptState
    cause: str
    reason_code: str | None = None
    amazon_refund_id: str | None = None
    refund_reference_id: str | None = None


@dataclass(frozen=True)
class PermanentlyRefused:
    """Amazon refused our Refund call for `attempt` outright with error `code`: nothing was created."""

    attempt: int
    code: str
    cause: str = "amazon:Refund"


# --- commands ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewAttemptStarted:
    """The retry workflow starts attempt `attempt` after the previous one Declined and checks passed."""

    attempt: int
    cause: str = "retry:ProcessingFailure"


@dataclass(frozen=True)
class ManualActionRequired:
    """A person must look at the refund (retry not eligible, outcome unknown for too long, ...)."""

    reason: str
    cause: str


@dataclass(frozen=True)
class ResolvedOutOfBand:
    """An operator refunded the buyer another way (gift card, store credit, ...)."""

    method: str
    note: str
    cause: str = "operator:resolve"
    caller: str | None = None


Observation = (
    AttemptAccepted
    | AttemptOutcome
    | PermanentlyRefused
    | NewAttemptStarted
    | ManualActionRequired
    | ResolvedOutOfBand
)


@dataclass(frozen=True)
class Transition:
    """The refund after an observation, and the ledger effect to store atomically with it."""

    before: Refund | None
    refund: Refund
    effect: LedgerEffect | None

    @property
    def changed(self) -> bool:
        return self.before is None or self.refund != self.before

    @property
    def new_history(self) -> tuple[HistoryEntry, ...]:
        done = 0 if self.before is None else len(self.before.history)
        return self.refund.history[done:]


def request_refund(
    *,
    refund_id: str,
    seller_id: str,
    amazon_capture_id: str,
    amount: Decimal,
    currency_code: str,
    seller_refund_note: str | None,
    soft_descriptor: str | None,
    metadata: Mapping[str, Any],
    request_fingerprint: str,
    at: datetime,
    caller: str | None = None,
    api: PaymentApi = PaymentApi.V1,
) -> Transition:
    """A new logical refund in `Requested`, attempt 1 prepared, reserving `amount` on the capture."""
    if not is_valid_refund_id(refund_id):
        raise InvalidRefundId(refund_id)
    if amount <= 0:
        raise ValueError("refund amount must be positive")
    first = Attempt(1, refund_reference_id(refund_id, 1), None, AttemptState.REQUESTED, None, at, at)
    refund = Refund(
        refund_id=refund_id,
        seller_id=seller_id,
        amazon_capture_id=amazon_capture_id,
        amount=amount,
        currency_code=currency_code,
        seller_refund_note=seller_refund_note,
        soft_descriptor=soft_descriptor,
        metadata=dict(metadata),
        status=RefundStatus.REQUESTED,
        reason_code=None,
        attempts=(first,),
        api=api,
        history=(HistoryEntry(at, None, RefundStatus.REQUESTED, "api:POST /refunds", caller=caller),),
        created_at=at,
        updated_at=at,
        request_fingerprint=request_fingerprint,
    )
    return Transition(None, refund, LedgerEffect(EffectKind.RESERVE, refund_id, amount))


def reservation_state(refund: Refund) -> ReservationState:
    """Where the refund's money stands on the capture ledger; derived, so it cannot disagree with status."""
    if any(a.state is AttemptState.COMPLETED for a in refund.attempts):
        return "completed"
    if refund.status is RefundStatus.FAILED:
        return "released"
    if refund.status is RefundStatus.RESOLVED_OUT_OF_BAND and all(
        a.state is AttemptState.DECLINED for a in refund.attempts
    ):
        return "released"
    return "in_flight"


def apply_observation(
    refund: Refund, observation: Observation, *, at: datetime, max_processing_failure_retries: int = 1
) -> Transition:
    """The transition `observation` causes; unchanged (same refund, no effect) for duplicates."""
    cause = observation.cause
    if cause.startswith("ipn:") and cause.removeprefix("ipn:") in refund.seen_notifications:
        return Transition(refund, refund, None)
    match observation:
        case AttemptAccepted():
            attempt = refund.attempt(observation.attempt)
            after = _observe_attempt(
                refund,
                attempt,
                observation.state,
                observation.reason_code,
                observation.amazon_refund_id,
                cause,
                at,
                max_processing_failure_retries,
                requested_number=observation.attempt,
            )
        case AttemptOutcome():
            attempt = _match_attempt(refund, observation.amazon_refund_id, observation.refund_reference_id)
            after = _observe_attempt(
                refund,
                attempt,
                observation.state,
                observation.reason_code,
                observation.amazon_refund_id,
                cause,
                at,
                max_processing_failure_retries,
            )
        case PermanentlyRefused():
            after = _refused(refund, observation, at)
        case NewAttemptStarted():
            after = _new_attempt(refund, observation, at)
        case ManualActionRequired():
            if refund.is_final or refund.status is RefundStatus.MANUAL_ACTION_REQUIRED:
                after = refund
            else:
                after = _enter(
                    refund, RefundStatus.MANUAL_ACTION_REQUIRED, cause, at, reason_code=observation.reason
                )
        case ResolvedOutOfBand():
            after = _resolve(refund, observation, at)
    return Transition(refund, after, _effect(refund, after))


# --- helpers --------------------------------------------------------------------------------------------


def _match_attempt(refund: Refund, amazon_refund_id: str | None, reference_id: str | None) -> Attempt | None:
    if amazon_refund_id is not None:
        by_id = next((a for a in refund.attempts if a.amazon_refund_id == amazon_refund_id), None)
        if by_id is not None:
            return by_id
    if reference_id is not None:
        return next((a for a in refund.attempts if a.refund_reference_id == reference_id), None)
    return None


def _observe_attempt(
    refund: Refund,
    attempt: Attempt | None,
    state: AttemptState,
    reason_code: str | None,
    amazon_refund_id: str | None,
    cause: str,
    at: datetime,
    max_retries: int,
    requested_number: int | None = None,
) -> Refund:
    late = LateObservation(
        at,
        cause,
        attempt.attempt if attempt is not None else requested_number,
        state,
        reason_code,
        amazon_refund_id,
    )
    if attempt is None or state is AttemptState.REQUESTED:
        return _record_late(refund, late)
    if amazon_refund_id is not None and attempt.amazon_refund_id not in (None, amazon_refund_id):
        return _record_late(refund, late)  # the reference names this attempt, but Amazon's id disagrees
    if attempt.state in TERMINAL_ATTEMPT_STATES or _RANK[state] < _RANK[attempt.state]:
        if state is attempt.state and reason_code == attempt.reason_code:
            return refund  # a duplicate of what we already know
        return _record_late(refund, late)
    bound_id = attempt.amazon_refund_id or amazon_refund_id
    if state is attempt.state and bound_id == attempt.amazon_refund_id:
        return refund  # nothing new (e.g. a Pending IPN after the Pending answer)
    updated = replace(attempt, state=state, reason_code=reason_code, amazon_refund_id=bound_id, updated_at=at)
    after = replace(
        refund,
        attempts=tuple(updated if a.attempt == attempt.attempt else a for a in refund.attempts),
        updated_at=at,
    )
    is_latest = attempt.attempt == refund.latest_attempt.attempt
    if state is AttemptState.COMPLETED:
        if refund.is_final:
            return after
        return _enter(after, RefundStatus.COMPLETED, cause, at, reason_code=None)
    if refund.is_final or refund.status is RefundStatus.MANUAL_ACTION_REQUIRED or not is_latest:
        return after
    if state is AttemptState.PENDING:
        if refund.status in (RefundStatus.REQUESTED, RefundStatus.RETRY_SCHEDULED):
            return _enter(after, RefundStatus.PENDING, cause, at, reason_code=None)
        return after
    retry = reason_code == PROCESSING_FAILURE and attempt.attempt <= max_retries
    target = RefundStatus.RETRY_SCHEDULED if retry else RefundStatus.MANUAL_ACTION_REQUIRED
    return _enter(after, target, cause, at, reason_code=reason_code, declined=True)


def _refused(refund: Refund, observation: PermanentlyRefused, at: datetime) -> Refund:
    attempt = refund.attempt(observation.attempt)
    late = LateObservation(
        at, observation.cause, observation.attempt, AttemptState.DECLINED, observation.code
    )
    if attempt is None:
        return _record_late(refund, late)
    if attempt.state is not AttemptState.REQUESTED:
        if attempt.state is AttemptState.DECLINED and attempt.reason_code == observation.code:
            return refund
        return _record_late(refund, late)
    updated = replace(attempt, state=AttemptState.DECLINED, reason_code=observation.code, updated_at=at)
    after = replace(
        refund,
        attempts=tuple(updated if a.attempt == attempt.attempt else a for a in refund.attempts),
        updated_at=at,
    )
    if refund.is_final or refund.status is RefundStatus.MANUAL_ACTION_REQUIRED:
        return after
    if attempt.attempt == 1 and observation.code not in AMBIGUOUS_REFUSALS:
        return _enter(after, RefundStatus.FAILED, observation.cause, at, reason_code=observation.code)
    return _enter(
        after, RefundStatus.MANUAL_ACTION_REQUIRED, observation.cause, at, reason_code=observation.code
    )


def _new_attempt(refund: Refund, observation: NewAttemptStarted, at: datetime) -> Refund:
    if refund.attempt(observation.attempt) is not None:
        return refund  # the workflow step replayed
    if refund.status is not RefundStatus.RETRY_SCHEDULED:
        raise TransitionNotAllowed(refund, "a new attempt needs status RetryScheduled")
    if refund.latest_attempt.state is not AttemptState.DECLINED:
        raise TransitionNotAllowed(refund, "the previous attempt has not been declined")
    number = refund.latest_attempt.attempt + 1
    if observation.attempt != number or number > MAX_ATTEMPT:
        raise TransitionNotAllowed(refund, f"the next attempt is {number}, not {observation.attempt}")
    new = Attempt(
        number, refund_reference_id(refund.refund_id, number), None, AttemptState.REQUESTED, None, at, at
    )
    return replace(refund, attempts=(*refund.attempts, new), updated_at=at)


def _resolve(refund: Refund, observation: ResolvedOutOfBand, at: datetime) -> Refund:
    if refund.status is RefundStatus.RESOLVED_OUT_OF_BAND:
        return refund
    if refund.status is not RefundStatus.MANUAL_ACTION_REQUIRED:
        raise TransitionNotAllowed(refund, "only a ManualActionRequired refund can be resolved out of band")
    detail = {"method": observation.method, "note": observation.note}
    return _enter(
        refund,
        RefundStatus.RESOLVED_OUT_OF_BAND,
        observation.cause,
        at,
        reason_code=None,
        detail=detail,
        caller=observation.caller,
    )


def _enter(
    refund: Refund,
    status: RefundStatus,
    cause: str,
    at: datetime,
    *,
    reason_code: str | None,
    declined: bool = False,
    detail: Mapping[str, str] | None = None,
    caller: str | None = None,
) -> Refund:
    entry = HistoryEntry(at, refund.status, status, cause, reason_code, declined, detail, caller)
    return replace(
        refund, status=status, reason_code=reason_code, history=(*refund.history, entry), updated_at=at
    )


def _record_late(refund: Refund, late: LateObservation) -> Refund:
    known = {(o.cause, o.attempt, o.state, o.reason_code) for o in refund.late_observations}
    if (late.cause, late.attempt, late.state, late.reason_code) in known:
        return refund
    if len(refund.late_observations) >= MAX_LATE_OBSERVATIONS:
        return refund
    return replace(refund, late_observations=(*refund.late_observations, late))


def _effect(before: Refund, after: Refund) -> LedgerEffect | None:
    if before.reservation_pending:
        return None  # nothing is reserved yet, so nothing can be released or completed
    was, now = reservation_state(before), reservation_state(after)
    if was == now or was != "in_flight":
        return None
    kind = EffectKind.COMPLETE if now == "completed" else EffectKind.RELEASE
    return LedgerEffect(kind, after.refund_id, after.amount)
