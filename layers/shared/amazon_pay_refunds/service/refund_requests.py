"""Refund requests (CONTRACT §3): request a refund, submit a stored one (the reconciler), read, resolve.

A new refund goes through three durable steps, so that a crash between any two leaves a state that
`submit_requested` finishes exactly once:
1. The intent is stored together with its reservation on the capture's ledger (one transaction). Only when
   the capture's ledger does not exist yet and Amazon cannot be asked about the capture is the intent
   stored alone, `reservation_pending`.
2. Only a refund holding its reservation is sent to Amazon: attempt 1, RefundReferenceId `{refund_id}_1`.
3. Amazon's answer is recorded. With an unknown outcome (timeouts, 5xx, throttling after the client's
   bounded retries) the refund stays `Requested` with its reservation; sending the unchanged call again is
   safe because Amazon answers a repeated RefundReferenceId with the refund it already made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, Protocol

from amazon_pay_refunds.domain.ledger import CurrencyMismatch, LedgerError, LedgerSeed, RefundExceedsCapture
from amazon_pay_refunds.domain.lifecycle import (
    AttemptAccepted,
    ManualActionRequired,
    Observation,
    PermanentlyRefused,
    ResolvedOutOfBand,
    Transition,
    TransitionNotAllowed,
    apply_observation,
    request_refund,
)
from amazon_pay_refunds.domain.models import (
    AttemptState,
    CaptureLedger,
    Refund,
    RefundStatus,
    request_fingerprint,
)
from amazon_pay_refunds.domain.references import is_amazon_capture_id, is_valid_refund_id
from amazon_pay_refunds.money import format_amount
from amazon_pay_refunds.mws.credentials import SellerCredentials
from amazon_pay_refunds.mws.credentials import UnknownSeller as UnknownSellerCredentials
from amazon_pay_refunds.mws.errors import AmazonPayError
from amazon_pay_refunds.mws.models import CaptureDetails, ProviderCreditReversal, RefundDetails
from amazon_pay_refunds.service.capture_refunds import CaptureRefundsStore, opening_refunds, survey_capture
from amazon_pay_refunds.service.errors import (
    AmazonRefused,
    CaptureNotFound,
    CaptureNotRefundable,
    IdempotencyConflict,
    InvalidRefundState,
    RefundNotFound,
    ReservationRefused,
    ServiceBusy,
    UnknownSeller,
)
from amazon_pay_refunds.store import (
    LedgerNotFound,
    RefundAlreadyExists,
    StoreBusy,
    VersionConflict,
)
from amazon_pay_refunds.store import RefundNotFound as StoredRefundNotFound

logger = logging.getLogger(__name__)

# Time kept back from the Lambda's remaining time for recording Amazon's answer and replying.
SAFETY_MARGIN_SECONDS = 3.0
# Never wait on Amazon longer than this in one request, however long the invocation may still run.
MAX_AMAZON_SECONDS = 20.0
# Refusals caused by our own credentials or signing, not by the refund: the request is not at fault and
# nothing was refunded, so the refund stays `Requested` for the reconciler once the configuration is fixed.
CONFIGURATION_ERROR_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})

FaultPoint = Literal["after_reservation", "after_amazon_answer"]
FaultHook = Callable[[FaultPoint, Refund], None]
AmazonErrorObserver = Callable[[str, AmazonPayError], None]


def no_faults(point: FaultPoint, refund: Refund) -> None:
    """The default fault hook: tests inject one that raises at a named point to simulate a crash."""


def ignore_amazon_error(operation: str, error: AmazonPayError) -> None:
    """The default observer of Amazon's errors (the handler counts them as metrics)."""


def deadline_for(
    remaining_millis: int,
    *,
    margin_seconds: float = SAFETY_MARGIN_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> float:
    """The absolute deadline (time.monotonic) for Amazon calls, given the invocation's remaining time."""
    budget = min(remaining_millis / 1000 - margin_seconds, MAX_AMAZON_SECONDS)
    return monotonic() + max(budget, 0.0)


class RefundStorePort(CaptureRefundsStore, Protocol):
    """What this service needs of store.RefundStore (beyond reading and recording a capture's refunds)."""

    def create_refund_with_reservation(
        self, refund: Refund, ledger_seed: LedgerSeed | None = None
    ) -> Refund: ...

    def create_refund_without_reservation(self, refund: Refund) -> Refund: ...

    def reserve_pending_refund(self, refund: Refund, ledger_seed: LedgerSeed | None = None) -> Refund: ...

    def get_ledger(self, amazon_capture_id: str) -> CaptureLedger | None: ...

    def ledger_exists(self, amazon_capture_id: str) -> bool: ...

    def transition(
        self, refund_id: str, fn: Callable[[Refund], Transition], *, max_attempts: int = 10
    ) -> Transition: ...


class AmazonPayPort(Protocol):
    """What this service needs of mws.AmazonPayClient."""

    def refund(
        self,
        amazon_capture_id: str,
        refund_reference_id: str,
        amount: Decimal,
        currency_code: str,
        *,
        seller_refund_note: str | None = None,
        soft_descriptor: str | None = None,
        provider_credit_reversals: Sequence[ProviderCreditReversal] = (),
        seller_id: str | None = None,
        deadline: float | None = None,
    ) -> RefundDetails: ...

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails: ...

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails: ...


@dataclass(frozen=True)
class RefundRequest:
    """A validated POST /refunds body; `amount` already parsed for its currency."""

    refund_id: str
    amazon_capture_id: str
    amount: Decimal
    currency_code: str
    seller_refund_note: str | None = None
    soft_descriptor: str | None = None
    seller_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Who asked (recorded on the refund's history, not part of the request's fingerprint).
    caller: str | None = None


@dataclass(frozen=True)
class RequestOutcome:
    """The refund after the request; `created` is False when an identical request was replayed."""

    refund: Refund
    created: bool


class _OutcomeUnknown(Exception):
    """Amazon could not be asked (or not be understood): try again later with the same call."""


@dataclass(frozen=True)
class Submission:
    """A refund after one of its attempts was sent to Amazon and the answer recorded.

    `refusal` is Amazon's permanent error when it refused the call outright; `outcome_unknown` is True
    when no answer was read (the attempt stays `Requested`; sending it again is safe); `held` is the
    reason when the attempt was not sent but handed to a person (`ManualActionRequired`).
    """

    refund: Refund
    refusal: AmazonPayError | None = None
    outcome_unknown: bool = False
    held: str | None = None


def submit_attempt(
    store: RefundStorePort,
    amazon_pay: AmazonPayPort,
    refund: Refund,
    *,
    deadline: float,
    now: Callable[[], datetime],
    max_processing_failure_retries: int,
    fault_hook: FaultHook = no_faults,
    on_amazon_error: AmazonErrorObserver = ignore_amazon_error,
    capture_checked: bool = False,
) -> Submission:
    """Send the refund's latest attempt (its own RefundReferenceId) to Amazon and record the answer.

    The one home of the Refund call: attempt 1 from the API and the reconciler, a retry attempt from the
    retry workflow. Never sends a refund without its reservation, nor one that Amazon's own record of the
    capture shows no longer fits (see `check_capture_headroom`; skipped when `capture_checked`: the
    ledger was just opened from GetCaptureDetails in this invocation).
    """
    if refund.reservation_pending:
        raise AssertionError(f"refund {refund.refund_id} has no reservation and must not be sent")
    attempt = refund.latest_attempt

    def record(observation: Observation) -> Refund:
        return record_observation(
            store, refund, observation, now=now, max_processing_failure_retries=max_processing_failure_retries
        )

    if not capture_checked:
        headroom = check_capture_headroom(
            store, amazon_pay, refund, deadline=deadline, now=now, on_amazon_error=on_amazon_error
        )
        if headroom == "unknown":
            return Submission(refund, outcome_unknown=True)
        if isinstance(headroom, Hold):
            logger.warning("refund %s: not sent, held for a person: %s", refund.refund_id, headroom.reason)
            held = record(ManualActionRequired(reason=headroom.reason, cause="check:capture-refunds"))
            return Submission(held, held=headroom.reason)
        if headroom == "exceeded":
            refusal = AmazonPayError(
                "RefundExceedsCapture",
                "refunds Amazon made on the capture that this service did not issue leave no room for it",
                retryable=False,
            )
            return Submission(record(PermanentlyRefused(attempt.attempt, refusal.code)), refusal)

    try:
        details = amazon_pay.refund(
            refund.amazon_capture_id,
            attempt.refund_reference_id,
            refund.amount,
            refund.currency_code,
            seller_refund_note=refund.seller_refund_note,
            soft_descriptor=refund.soft_descriptor,
            seller_id=refund.seller_id,
            deadline=deadline,
        )
    except AmazonPayError as error:
        on_amazon_error("Refund", error)
        if _outcome_unknown(error):
            logger.warning(
                "refund %s attempt %d: Amazon's answer is unknown (%s); it stays Requested",
                refund.refund_id, attempt.attempt, error.code,
            )  # fmt: skip
            return Submission(refund, outcome_unknown=True)
        fault_hook("after_amazon_answer", refund)
        return Submission(record(PermanentlyRefused(attempt.attempt, error.code)), error)
    fault_hook("after_amazon_answer", refund)
    status = details.refund_status
    accepted = AttemptAccepted(
        attempt.attempt, details.amazon_refund_id, _attempt_state(status.state), status.reason_code
    )
    return Submission(record(accepted))


@dataclass(frozen=True)
class Hold:
    """No Refund call: a person must look at the refund first (`reason` becomes its reason_code)."""

    reason: str


def check_capture_headroom(
    store: RefundStorePort,
    amazon_pay: AmazonPayPort,
    refund: Refund,
    *,
    deadline: float,
    now: Callable[[], datetime],
    on_amazon_error: AmazonErrorObserver = ignore_amazon_error,
) -> Literal["fits", "exceeded", "unknown"] | Hold:
    """Whether the capture, as Amazon records it, still has room for this (already reserved) attempt.

    The ledger learns of refunds this service did not issue (A-to-z claims, chargebacks, Seller Central,
    the seller's other systems) from their IPNs, which may still be on their way or be lost. So before each
    Refund call the capture's refunds are read and classified (service/capture_refunds.py) and the
    external ones recorded; the attempt is sent only if the ledger is then not overdrawn. A retry attempt
    (n >= 2) is also held when an A-to-z or chargeback refund is now on the capture (Amazon's procedure),
    and any attempt when Amazon lists a refund on the capture that it will not describe. An attempt that
    Amazon already made (its answer was lost) is always sent again unchanged: that creates nothing and
    learns what Amazon made. "unknown": Amazon did not answer (try later).
    """
    capture_id, seller_id = refund.amazon_capture_id, refund.seller_id
    try:
        capture = amazon_pay.get_capture_details(capture_id, seller_id=seller_id, deadline=deadline)
        survey = survey_capture(store, amazon_pay, capture, seller_id, deadline=deadline, now=now)
    except AmazonPayError as error:
        on_amazon_error("GetCaptureDetails", error)
        if _outcome_unknown(error):
            return "unknown"
        return "fits"  # a permanent refusal: Amazon's answer to the Refund call itself will say why
    if survey.known is None:
        return "fits"  # no ledger: nothing reserved against it, so nothing of ours to send
    if (refund.refund_id, refund.latest_attempt.attempt) in survey.ours_unrecorded:
        return "fits"  # Amazon already made this very attempt: the unchanged call only learns its answer
    if survey.hold_reason is not None:
        return Hold(survey.hold_reason)
    if refund.latest_attempt.attempt >= 2 and survey.retry_forbidden is not None:
        return Hold(survey.retry_forbidden)
    return "exceeded" if survey.known.available < 0 else "fits"


def record_observation(
    store: RefundStorePort,
    refund: Refund,
    observation: Observation,
    *,
    now: Callable[[], datetime],
    max_processing_failure_retries: int,
) -> Refund:
    """Store what Amazon said. If the store is too busy, the refund stays as it was (its attempt still
    `Requested`, still reserved) and asking Amazon again repeats the same answer."""
    try:
        return store.transition(
            refund.refund_id,
            lambda current: apply_observation(
                current, observation, at=now(), max_processing_failure_retries=max_processing_failure_retries
            ),
        ).refund
    except StoreBusy:
        logger.warning("refund %s: Amazon's answer not stored (store busy)", refund.refund_id)
        return refund


class RefundRequests:
    """The use cases behind the storefront API and the reconciler's submission of `Requested` refunds."""

    def __init__(
        self,
        store: RefundStorePort,
        amazon_pay: AmazonPayPort,
        seller_credentials: Callable[[str | None], SellerCredentials],
        *,
        allow_over_refund: bool = False,
        max_processing_failure_retries: int = 1,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        fault_hook: FaultHook = no_faults,
        on_amazon_error: AmazonErrorObserver = ignore_amazon_error,
    ) -> None:
        self._store = store
        self._amazon = amazon_pay
        self._seller_credentials = seller_credentials
        self._allow_over_refund = allow_over_refund
        self._max_retries = max_processing_failure_retries
        self._now = now
        self._fault = fault_hook
        self._on_amazon_error = on_amazon_error

    @classmethod
    def from_runtime(
        cls, *, fault_hook: FaultHook = no_faults, on_amazon_error: AmazonErrorObserver = ignore_amazon_error
    ) -> RefundRequests:
        """Wired from `runtime` (lazy, cached per container): the store, Amazon Pay, the credentials."""
        from amazon_pay_refunds import runtime

        settings = runtime.settings()
        return cls(
            runtime.store(),
            runtime.amazon_pay(),
            runtime.seller_credentials,
            allow_over_refund=settings.allow_over_refund,
            max_processing_failure_retries=settings.max_processing_failure_retries,
            fault_hook=fault_hook,
            on_amazon_error=on_amazon_error,
        )

    # --- POST /refunds -------------------------------------------------------------------------------

    def request_refund(self, request: RefundRequest, *, deadline: float) -> RequestOutcome:
        """Store the refund with its reservation, then ask Amazon (attempt 1) within `deadline`.

        Raises IdempotencyConflict, UnknownSeller, CaptureNotRefundable, ReservationRefused, AmazonRefused
        (the refund is then stored `Failed`), or ServiceBusy.
        """
        seller_id = self._seller_id(request.seller_id)
        fingerprint = _fingerprint(request, seller_id)
        existing = self._store.get_refund(request.refund_id)
        if existing is not None:
            return RequestOutcome(_replayed(existing, fingerprint), created=False)
        refund = request_refund(
            refund_id=request.refund_id,
            seller_id=seller_id,
            amazon_capture_id=request.amazon_capture_id,
            amount=request.amount,
            currency_code=request.currency_code,
            seller_refund_note=request.seller_refund_note or None,
            soft_descriptor=request.soft_descriptor or None,
            metadata=request.metadata,
            request_fingerprint=fingerprint,
            at=self._now(),
            caller=request.caller,
        ).refund
        try:
            stored, capture_checked = self._store_new(refund, deadline)
        except RefundAlreadyExists as lost_race:
            return RequestOutcome(_replayed(lost_race.existing, fingerprint), created=False)
        if stored.reservation_pending:
            return RequestOutcome(stored, created=True)
        self._fault("after_reservation", stored)
        submission = self._submit(stored, deadline, capture_checked=capture_checked)
        if submission.refusal is not None and submission.refund.status is RefundStatus.FAILED:
            raise AmazonRefused(submission.refusal.code, submission.refusal.message, submission.refund)
        return RequestOutcome(submission.refund, created=True)

    def _seller_id(self, requested: str | None) -> str:
        try:
            return self._seller_credentials(requested).seller_id
        except UnknownSellerCredentials:
            raise UnknownSeller(requested or "(default)") from None

    def _store_new(self, refund: Refund, deadline: float) -> tuple[Refund, bool]:
        """The stored refund: with its reservation, or `reservation_pending` if Amazon was unreachable;
        and whether the capture was just read from Amazon (GetCaptureDetails) to open its ledger.

        The ledger is looked up first (a key-only read) rather than discovered by a cancelled reservation:
        a cancelled transaction is billed like a committed one (4 write units here), and most captures
        are refunded once, so that would double the cost of most refunds.
        """
        if self._store.ledger_exists(refund.amazon_capture_id):
            try:
                return self._create(refund, None), False
            except LedgerNotFound:
                pass  # cannot happen unless a ledger is deleted; fall through and open it again
        try:
            seed = self._ledger_seed(refund, deadline)
        except _OutcomeUnknown:
            try:
                return self._store.create_refund_without_reservation(refund), False
            except StoreBusy:
                raise ServiceBusy() from None
        return self._create(refund, seed), True

    def _create(self, refund: Refund, seed: LedgerSeed | None) -> Refund:
        try:
            return self._store.create_refund_with_reservation(refund, seed)
        except LedgerError as refused:
            raise _reservation_refused(refused, refund.currency_code) from None
        except StoreBusy:
            raise ServiceBusy() from None

    def _ledger_seed(self, refund: Refund, deadline: float) -> LedgerSeed:
        """What Amazon says about the capture. Raises _OutcomeUnknown, CaptureNotRefundable, AmazonRefused."""
        try:
            capture = self._amazon.get_capture_details(
                refund.amazon_capture_id, seller_id=refund.seller_id, deadline=deadline
            )
        except AmazonPayError as error:
            self._on_amazon_error("GetCaptureDetails", error)
            if _outcome_unknown(error):
                raise _OutcomeUnknown() from None
            raise AmazonRefused(error.code, error.message) from None
        status = capture.capture_status
        if status.state != "Completed":
            raise CaptureNotRefundable(refund.amazon_capture_id, status.state, status.reason_code)
        try:
            already = opening_refunds(self._store, self._amazon, capture, refund.seller_id, deadline=deadline)
        except AmazonPayError as error:
            self._on_amazon_error("GetRefundDetails", error)
            if _outcome_unknown(error):
                raise _OutcomeUnknown() from None
            # Amazon lists a refund on the capture that it will not describe: no ledger is opened on a
            # balance we cannot know, and the refund is refused rather than guessed.
            raise AmazonRefused(error.code, error.message) from None
        return LedgerSeed(
            amazon_capture_id=refund.amazon_capture_id,
            seller_id=refund.seller_id,
            currency_code=capture.capture_amount.currency_code,
            captured=capture.capture_amount.amount,
            refunds=already,
            allow_over_refund=self._allow_over_refund,
        )

    # --- the reconciler ------------------------------------------------------------------------------

    def submit_requested(self, refund_id: str, *, deadline: float) -> Refund:
        """Finish a `Requested` refund whose first call never got an answer (or was never made).

        Takes the reservation if it is still pending (opening the capture's ledger from GetCaptureDetails),
        then sends attempt 1 with its unchanged RefundReferenceId: Amazon answers a repeat with the refund
        it already made, so this never refunds twice. Returns the refund as stored afterwards: `Pending`,
        `Failed` (refused, or the reservation refused), or still `Requested` when Amazon's answer is
        still unknown. A refund in any other status is returned unchanged. Raises RefundNotFound.
        """
        refund = self._store.get_refund(refund_id)
        if refund is None:
            raise RefundNotFound(refund_id)
        if refund.status is not RefundStatus.REQUESTED:
            return refund
        if refund.reservation_pending:
            refund = self._reserve_pending(refund, deadline)
            if refund.reservation_pending or refund.status is not RefundStatus.REQUESTED:
                return refund
            self._fault("after_reservation", refund)
        return self._submit(refund, deadline).refund

    def _reserve_pending(self, refund: Refund, deadline: float) -> Refund:
        seed: LedgerSeed | None = None
        for _ in range(5):
            try:
                return self._store.reserve_pending_refund(refund, seed)
            except LedgerNotFound:
                try:
                    seed = self._ledger_seed(refund, deadline)
                except _OutcomeUnknown:
                    return refund
                except (CaptureNotRefundable, AmazonRefused) as refused:
                    return self._fail_unreserved(refund, refused.code, "amazon:GetCaptureDetails")
            except LedgerError as refused:
                return self._fail_unreserved(refund, refused.code, "ledger:reservation")
            except VersionConflict:
                current = self._store.get_refund(refund.refund_id)
                if current is None or not current.reservation_pending:
                    return current or refund  # someone else took the reservation meanwhile
                refund = current
        raise ServiceBusy()

    def _fail_unreserved(self, refund: Refund, code: str, cause: str) -> Refund:
        """`Failed` without a reservation to release: nothing was reserved and nothing sent."""
        return self._record(refund, PermanentlyRefused(1, code, cause=cause))

    # --- Amazon's Refund call ------------------------------------------------------------------------

    def _submit(self, refund: Refund, deadline: float, *, capture_checked: bool = False) -> Submission:
        """Send the refund's first attempt and record Amazon's answer (never without a reservation)."""
        return submit_attempt(
            self._store,
            self._amazon,
            refund,
            deadline=deadline,
            now=self._now,
            max_processing_failure_retries=self._max_retries,
            fault_hook=self._fault,
            on_amazon_error=self._on_amazon_error,
            capture_checked=capture_checked,
        )

    def _record(self, refund: Refund, observation: Observation) -> Refund:
        return record_observation(
            self._store, refund, observation, now=self._now, max_processing_failure_retries=self._max_retries
        )

    # --- reads and the operator's resolution ---------------------------------------------------------

    def get_refund(self, refund_id: str) -> Refund:
        refund = self._store.get_refund(refund_id) if is_valid_refund_id(refund_id) else None
        if refund is None:
            raise RefundNotFound(refund_id)
        return refund

    def get_ledger(self, amazon_capture_id: str) -> CaptureLedger:
        ledger = (
            self._store.get_ledger(amazon_capture_id) if is_amazon_capture_id(amazon_capture_id) else None
        )
        if ledger is None:
            raise CaptureNotFound(amazon_capture_id)
        return ledger

    def resolve(self, refund_id: str, method: str, note: str, *, caller: str | None = None) -> Refund:
        """An operator refunded the buyer another way: `ManualActionRequired` → `ResolvedOutOfBand`;
        `caller` (who) is recorded on the history.

        Idempotent for a refund already resolved. Raises RefundNotFound, InvalidRefundState.
        """
        if not is_valid_refund_id(refund_id):
            raise RefundNotFound(refund_id)
        observation = ResolvedOutOfBand(method, note, caller=caller)
        try:
            return self._store.transition(
                refund_id,
                lambda current: apply_observation(
                    current, observation, at=self._now(), max_processing_failure_retries=self._max_retries
                ),
            ).refund
        except StoredRefundNotFound:
            raise RefundNotFound(refund_id) from None
        except TransitionNotAllowed as refused:
            raise InvalidRefundState(
                refused.refund, "only a ManualActionRequired refund can be resolved out of band"
            ) from None
        except StoreBusy:
            raise ServiceBusy() from None


def _fingerprint(request: RefundRequest, seller_id: str) -> str:
    """Over the normalised body: the amount as its quantised string, the default seller filled in."""
    return request_fingerprint(
        {
            "refund_id": request.refund_id,
            "amazon_capture_id": request.amazon_capture_id,
            "amount": format_amount(request.amount, request.currency_code),
            "currency_code": request.currency_code,
            "seller_refund_note": request.seller_refund_note or None,
            "soft_descriptor": request.soft_descriptor or None,
            "seller_id": seller_id,
            "metadata": dict(request.metadata),
        }
    )


def _replayed(existing: Refund, fingerprint: str) -> Refund:
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict(existing.refund_id, existing.status.value)
    return existing


def _reservation_refused(error: LedgerError, currency_code: str) -> ReservationRefused:
    details: dict[str, str] = {}
    if isinstance(error, RefundExceedsCapture):
        details = {
            "requested": format_amount(error.requested, currency_code),
            "available": format_amount(error.available, currency_code),
            "currency_code": currency_code,
        }
    elif isinstance(error, CurrencyMismatch):
        details = {"requested": error.requested, "captured": error.captured}
    return ReservationRefused(error.code, str(error), details)


def _outcome_unknown(error: AmazonPayError) -> bool:
    return error.retryable or error.code in CONFIGURATION_ERROR_CODES


def _attempt_state(state: str) -> AttemptState:
    try:
        return AttemptState(state)
    except ValueError:
        return AttemptState.PENDING  # Refund answers Pending; anything unexpected is settled by IPN/polling
