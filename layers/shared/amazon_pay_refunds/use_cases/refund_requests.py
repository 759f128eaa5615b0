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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from amazon_pay_refunds.core.ledger import CurrencyMismatch, LedgerError, LedgerSeed, RefundExceedsCapture
from amazon_pay_refunds.core.lifecycle import (
    Observation,
    PermanentlyRefused,
    ResolvedOutOfBand,
    TransitionNotAllowed,
    apply_observation,
    request_refund,
)
from amazon_pay_refunds.core.models import (
    CaptureLedger,
    PaymentApi,
    Refund,
    RefundStatus,
    qualified_id,
    request_fingerprint,
)
from amazon_pay_refunds.core.references import is_amazon_capture_id, is_valid_refund_id
from amazon_pay_refunds.deadlines import deadline_in
from amazon_pay_refunds.money import format_amount
from amazon_pay_refunds.ports import (
    AmazonErrorObserver,
    AmazonPayError,
    AmazonPayPort,
    LedgerNotFound,
    NoCredentialsForSeller,
    PayV2Credentials,
    RefundAlreadyExists,
    RefundNotStored,
    RefundStorePort,
    SellerCredentials,
    StoreBusy,
    VersionConflict,
    ignore_amazon_error,
)
from amazon_pay_refunds.use_cases.capture_refunds import ledger_seed
from amazon_pay_refunds.use_cases.errors import (
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
from amazon_pay_refunds.use_cases.submission import (
    FaultHook,
    Submission,
    no_faults,
    outcome_unknown,
    record_observation,
    submit_attempt,
)

logger = logging.getLogger(__name__)
# GET /charges/{id} of a ledger that does not know its charge permission yet: how long Get Charge may take.
LEDGER_READ_SECONDS = 3.0


@dataclass(frozen=True)
class RefundRequest:
    """A validated POST /refunds body; `amount` already parsed for its currency."""

    refund_id: str
    amazon_capture_id: str  # the v2 charge id when `api` is v2
    amount: Decimal
    currency_code: str
    seller_refund_note: str | None = None
    soft_descriptor: str | None = None
    seller_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    # Who asked (recorded on the refund's history, not part of the request's fingerprint).
    caller: str | None = None
    api: PaymentApi = PaymentApi.V1


@dataclass(frozen=True)
class RequestOutcome:
    """The refund after the request; `created` is False when an identical request was replayed."""

    refund: Refund
    created: bool


class _OutcomeUnknown(Exception):
    """Amazon could not be asked (or not be understood): try again later with the same call."""


class RefundService:
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
        v2_seller_credentials: Callable[[str | None], PayV2Credentials] | None = None,
    ) -> None:
        self._v2_seller_credentials = v2_seller_credentials
        self._store = store
        self._amazon = amazon_pay
        self._seller_credentials = seller_credentials
        self._allow_over_refund = allow_over_refund
        self._max_retries = max_processing_failure_retries
        self._now = now
        self._fault = fault_hook
        self._on_amazon_error = on_amazon_error

    # --- POST /refunds -------------------------------------------------------------------------------

    def request_refund(self, request: RefundRequest, *, deadline: float) -> RequestOutcome:
        """Store the refund with its reservation, then ask Amazon (attempt 1) within `deadline`.

        Raises IdempotencyConflict, UnknownSeller, CaptureNotRefundable, ReservationRefused, AmazonRefused
        (the refund is then stored `Failed`), or ServiceBusy.
        """
        seller_id = self._seller_id(request.seller_id, request.api)
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
            api=request.api,
        ).refund
        try:
            stored, capture_checked = self._store_new(refund, deadline)
        except RefundAlreadyExists as lost_race:
            return RequestOutcome(_replayed(lost_race.existing, fingerprint), created=False)
        if stored.reservation_pending:
            return RequestOutcome(stored, created=True)
        self._fault("after_reservation", stored)
        submission = self._submit(stored, deadline, capture_checked=capture_checked, first_send=True)
        if submission.refusal is not None and submission.refund.status is RefundStatus.FAILED:
            raise AmazonRefused(submission.refusal.code, submission.refusal.message, submission.refund)
        return RequestOutcome(submission.refund, created=True)

    def _seller_id(self, requested: str | None, api: PaymentApi = PaymentApi.V1) -> str:
        """The seller, who must have credentials for the API the refund goes through (else UnknownSeller:
        a v2 charge for a seller with MWS keys only is refused before anything is stored)."""
        try:
            if api is PaymentApi.V2:
                if self._v2_seller_credentials is None:
                    raise NoCredentialsForSeller(requested or "(default)")
                credentials = self._v2_seller_credentials(requested)
                return credentials.seller_id
            return self._seller_credentials(requested).seller_id
        except NoCredentialsForSeller:
            raise UnknownSeller(requested or "(default)") from None

    def _store_new(self, refund: Refund, deadline: float) -> tuple[Refund, bool]:
        """The stored refund: with its reservation, or `reservation_pending` if Amazon was unreachable;
        and whether the capture was just read from Amazon (GetCaptureDetails) to open its ledger.

        The ledger is looked up first (a key-only read) rather than discovered by a cancelled reservation:
        a cancelled transaction is billed like a committed one (4 write units here), and most captures
        are refunded once, so that would double the cost of most refunds.
        """
        if self._store.ledger_exists(refund.ledger_id):
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
                refund.ledger_id, seller_id=refund.seller_id, deadline=deadline
            )
        except AmazonPayError as error:
            self._on_amazon_error("GetCaptureDetails", error)
            if outcome_unknown(error):
                raise _OutcomeUnknown() from None
            raise AmazonRefused(error.code, error.message) from None
        status = capture.capture_status
        if status.state != "Completed":
            raise CaptureNotRefundable(refund.amazon_capture_id, status.state, status.reason_code)
        try:
            return ledger_seed(
                self._store,
                self._amazon,
                capture,
                refund.seller_id,
                allow_over_refund=self._allow_over_refund,
                deadline=deadline,
                ledger_id=refund.ledger_id,
            )
        except AmazonPayError as error:
            self._on_amazon_error("GetRefundDetails", error)
            if outcome_unknown(error):
                raise _OutcomeUnknown() from None
            # Amazon lists a refund on the capture that it will not describe: no ledger is opened on a
            # balance we cannot know, and the refund is refused rather than guessed.
            raise AmazonRefused(error.code, error.message) from None

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
            return self._submit(refund, deadline, first_send=True).refund
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

    def _submit(
        self, refund: Refund, deadline: float, *, capture_checked: bool = False, first_send: bool = False
    ) -> Submission:
        """Send the refund's first attempt and record Amazon's answer (never without a reservation);
        `first_send` when it was reserved in this invocation, so never sent before."""
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
            first_send=first_send,
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

    def get_ledger(self, amazon_capture_id: str, api: PaymentApi = PaymentApi.V1) -> CaptureLedger:
        """The ledger of a v1 capture, or of a v2 charge (`api` v2: GET /charges/{id})."""
        ledger = (
            self._store.get_ledger(qualified_id(api, amazon_capture_id))
            if is_amazon_capture_id(amazon_capture_id)
            else None
        )
        if ledger is None:
            raise CaptureNotFound(amazon_capture_id)
        if api is PaymentApi.V2 and ledger.charge_permission_id is None:
            ledger = self._with_charge_permission(ledger)
        return ledger

    def _with_charge_permission(self, ledger: CaptureLedger) -> CaptureLedger:
        """A charge ledger opened before ledgers kept their charge permission: Get Charge names it (kept
        on the ledger from then on), so the view can show the chargebacks recorded on it. Amazon not
        answering leaves the view without them (`charge_permission_id` null): a read never fails for it."""
        try:
            charge = self._amazon.get_capture_details(
                ledger.amazon_capture_id,
                seller_id=ledger.seller_id,
                deadline=deadline_in(LEDGER_READ_SECONDS),
            )
        except AmazonPayError as error:
            self._on_amazon_error("GetCaptureDetails", error)
            return ledger
        except NoCredentialsForSeller:
            return ledger
        if charge.charge_permission_id is None:
            return ledger
        self._store.note_charge_permission(ledger.amazon_capture_id, charge.charge_permission_id)
        return self._store.get_ledger(ledger.amazon_capture_id) or ledger

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
        except RefundNotStored:
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
            "amazon_capture_id": qualified_id(request.api, request.amazon_capture_id),
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
