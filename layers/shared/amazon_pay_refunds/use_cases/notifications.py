"""The IPN endpoint's use case (CONTRACT §5): verify an SNS post, then act on the Amazon Pay notification.

`IpnService.handle(body, headers)` returns an `IpnOutcome` (a disposition + reason code + safe log fields)
for every input but unexpected failures (see below); `api/ipn_answers.py` turns it into the HTTP answer:

- ACCEPTED (200): processed, duplicate, or verified but not acted upon (other notification types, samples,
  another release environment, an unsubscribe confirmation, an external refund we cannot place);
- MALFORMED (400): `MalformedNotification`, or NotificationData without readable RefundDetails;
- NOT_AUTHENTIC (403): `NotAuthentic` (signature, certificate, certificate URL, headers, freshness, topic,
  seller);
- UNAVAILABLE (503): transient (certificate fetch, DynamoDB throttling/StoreBusy/any store error, Amazon
  Pay unreachable, the SubscribeURL unreachable), so that SNS redelivers.

Decisions (docs in the module, tests in tests/*/ipn_handler):
- A PaymentRefund IPN is classified (core/classification.py): it is one of our refunds only when its
  RefundReferenceId (`{refund_id}_{n}`) names an attempt that exists on that refund, with the same
  AmazonRefundId where the attempt knows one, the same amount and currency, and the IPN's SellerId; the
  domain then matches the attempt by AmazonRefundId first. Refund IPNs need no dedupe write: the refund
  applies each `ipn:{NotificationReferenceId}` cause at most once.
- Everything else is external, however much its reference looks like ours (the seller's other systems may
  use `{our refund_id}_7`): AmazonA-ZRefund, BuyerCanceled, chargebacks, Seller Central, other systems. A
  reference naming a refund of another seller is logged (`seller_mismatch_refund_id`); answering 403 would
  only make SNS redeliver a genuine, signed notification hourly for 14 days. The IPN carries no
  AmazonCaptureId, so the capture is looked for first where the refund its reference names is (same order),
  then among our open refunds' captures on the same Amazon order reference (the first three parts of the
  AmazonRefundId), and confirmed with GetCaptureDetails (its IdList lists the refund). Found →
  `record_external_refund` (idempotent by AmazonRefundId; a missing ledger is opened from that capture with
  every refund on it read). Not found → acknowledged and logged (`external_refund_unmatched`): the headroom
  check before any later Refund call on that capture, and a ledger opened later, read the capture's refunds
  and record it then. Pending external refunds are counted at once (Amazon's cap counts them too); Declined
  ones moved no money: acknowledged.
- Only unexpected failures raise: non-retryable Amazon Pay errors while locating a capture (e.g. missing
  credentials for the seller) and programming errors; the handler answers them 500.
- Sample IPNs (`IsSample`, sent from Seller Central) and IPNs of the other release environment (a Sandbox
  IPN reaching a live deployment or the reverse; both share the SellerId) are acknowledged, never applied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from amazon_pay_refunds.adapters.mws.parse import MalformedXml, refund_details_from_xml
from amazon_pay_refunds.adapters.sns import (
    DEFAULT_MAX_AGE,
    AmazonPayNotification,
    MalformedNotification,
    MessageType,
    NotAuthentic,
    SnsMessage,
    SnsVerificationError,
)
from amazon_pay_refunds.core.classification import (
    UNTYPED_REFUND_TYPE,
    ReportedRefund,
    classify,
    named_refund_id,
)
from amazon_pay_refunds.core.ledger import CurrencyMismatch, LedgerSeed
from amazon_pay_refunds.core.lifecycle import AttemptOutcome, Transition, apply_observation
from amazon_pay_refunds.core.models import (
    AttemptState,
    PaymentApi,
    Refund,
    parse_qualified_id,
    qualified_id,
    reported_attempt_state,
)
from amazon_pay_refunds.ports import (
    AmazonPayError,
    AmazonPayReader,
    AttemptOutcomeListener,
    CaptureDetails,
    IpnAuthenticity,
    KnownRefunds,
    LedgerNotFound,
    NotificationStore,
    RefundDetails,
    RefundNotStored,
    StoreError,
    SubscribeUrlFetcher,
    SubscriptionNotConfirmed,
    ignore_attempt_outcome,
)
from amazon_pay_refunds.use_cases.capture_refunds import (
    ledger_seed,
    reported,
    sent_unanswered,
    survey_capture,
)

logger = logging.getLogger(__name__)

PAYMENT_REFUND = "PaymentRefund"
# Non-refund notifications are remembered as long as a genuine redelivery can still pass the verifier.
IPN_DEDUPE_TTL = DEFAULT_MAX_AGE
# How many open refunds are searched for a v1 external refund's capture.
MAX_OPEN_REFUNDS_SEARCHED = 1000
AMAZON_PAY_DEADLINE_SECONDS = 6.0


# --- answers -------------------------------------------------------------------------------------------


class Disposition(StrEnum):
    """What became of an IPN; the HTTP status is the API layer's (api/ipn_answers.py)."""

    ACCEPTED = "accepted"  # processed, a duplicate, or verified and deliberately not acted upon
    MALFORMED = "malformed"  # not a well-formed SNS message or Amazon Pay notification
    NOT_AUTHENTIC = "not_authentic"  # not from SNS, or not for this deployment
    UNAVAILABLE = "unavailable"  # transient: SNS is to deliver it again
    FAILED = "failed"  # unexpected (a bug, a configuration error): SNS delivers it again


@dataclass(frozen=True)
class IpnOutcome:
    """What the use case made of an IPN, and the safe fields to log with it (never the body or secrets)."""

    disposition: Disposition
    reason: str
    message_id: str | None = None
    notification_type: str | None = None
    refund_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


def _refusal(error: SnsVerificationError) -> Disposition:
    if isinstance(error, MalformedNotification):
        return Disposition.MALFORMED
    if isinstance(error, NotAuthentic):
        return Disposition.NOT_AUTHENTIC
    return Disposition.UNAVAILABLE  # CertificateUnavailable


# Reason codes of accepted IPNs (200).
PROCESSED = "processed"
DUPLICATE = "duplicate"
ACKNOWLEDGED = "acknowledged"
SAMPLE_IGNORED = "sample_ignored"
ENVIRONMENT_IGNORED = "release_environment_ignored"
EXTERNAL_RECORDED = "external_refund_recorded"
EXTERNAL_DUPLICATE = "external_refund_duplicate"
EXTERNAL_UNMATCHED = "external_refund_unmatched"
EXTERNAL_DECLINED = "external_refund_declined"
EXTERNAL_CURRENCY_MISMATCH = "external_refund_currency_mismatch"
SUBSCRIPTION_CONFIRMED = "subscription_confirmed"
UNSUBSCRIBE_LOGGED = "unsubscribe_logged"
# Rejections outside the verifier's own reasons.
REFUND_DETAILS_INVALID = "refund_details_invalid"
STORE_UNAVAILABLE = "store_unavailable"
AMAZON_PAY_UNAVAILABLE = "amazon_pay_unavailable"
SUBSCRIPTION_CONFIRM_FAILED = "subscription_confirm_failed"
# A v2 refund IPN naming no attempt of ours on its charge while one of our refunds on that charge has an
# attempt sent but unanswered (its Create Refund answer not recorded yet): 503, so SNS redelivers it.
V2_REFUND_NOT_PLACED_YET = "v2_refund_not_placed_yet"
V2_REFUND = "REFUND"
V2_CHARGEBACK = "CHARGEBACK"
# A v2 CHARGEBACK IPN recorded against its charge permission (a redelivery: DUPLICATE).
CHARGEBACK_RECORDED = "chargeback_recorded"
# A v2 CHARGEBACK IPN without the ChargePermissionId its documented message carries: it cannot be placed.
CHARGEBACK_WITHOUT_PERMISSION = "chargeback_without_charge_permission"
# A v2 refund by others: a recorded Pending entry moved to Completed or Declined (its IPN after it settled).
EXTERNAL_SETTLED = "external_refund_settled"
# A v2 refund by others Refunded, no entry by its id: the charge was surveyed (refundedAmount explains it).
EXTERNAL_SURVEYED = "external_refund_surveyed"
# A v2 refund by others Refunded on a charge without a ledger: Get Charge's refundedAmount counts it when one
# opens, so nothing is recorded now.
EXTERNAL_NO_LEDGER = "external_refund_no_ledger"


# --- ports ---------------------------------------------------------------------------------------------


def _no_subscriptions(url: str) -> None:
    raise SubscriptionNotConfirmed("no SubscribeURL fetcher is configured")


# --- the use case --------------------------------------------------------------------------------------


def order_reference_of(amazon_object_id: str) -> str | None:
    """`S02-8274313-3487267` of `S02-8274313-3487267-R019346`: the Amazon order reference it belongs to."""
    parts = amazon_object_id.split("-")
    if len(parts) != 4 or not all(parts):
        return None
    return "-".join(parts[:3])


class IpnService:
    """Verifies IPNs with one long-lived verifier (warm certificate cache) and applies them to the store."""

    def __init__(
        self,
        *,
        authenticity: IpnAuthenticity,
        store: NotificationStore,
        amazon_pay: Callable[[], AmazonPayReader],
        sandbox: bool,
        max_processing_failure_retries: int,
        allow_over_refund: bool = False,
        subscribe_url_fetcher: SubscribeUrlFetcher | None = None,
        on_attempt_outcome: AttemptOutcomeListener = ignore_attempt_outcome,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._authenticity = authenticity
        self._store = store
        self._amazon_pay = amazon_pay
        self._release_environment = "Sandbox" if sandbox else "Live"
        self._max_retries = max_processing_failure_retries
        self._allow_over_refund = allow_over_refund
        self._subscribe = subscribe_url_fetcher or _no_subscriptions
        self._on_attempt_outcome = on_attempt_outcome
        self._clock = clock

    # -- entry ---------------------------------------------------------------------------------------

    def handle(self, body: str | bytes, headers: Mapping[str, str]) -> IpnOutcome:
        try:
            verified = self._authenticity.verify(body, headers)
        except SnsVerificationError as error:
            return IpnOutcome(_refusal(error), error.reason.value, fields={"detail": error.detail})
        sns = verified.sns
        try:
            if sns.type is MessageType.SUBSCRIPTION_CONFIRMATION:
                return self._confirm_subscription(sns)
            if sns.type is MessageType.UNSUBSCRIBE_CONFIRMATION:
                return IpnOutcome(
                    Disposition.ACCEPTED,
                    UNSUBSCRIBE_LOGGED,
                    sns.message_id,
                    fields={"topic_arn": sns.topic_arn},
                )
            notification = verified.notification
            assert notification is not None  # DeploymentBinding.check parses every Notification
            return self._notification(sns, notification)
        except (StoreError, ClientError, BotoCoreError) as error:
            return IpnOutcome(
                Disposition.UNAVAILABLE,
                STORE_UNAVAILABLE,
                sns.message_id,
                fields={"error": type(error).__name__},
            )

    # -- subscriptions -------------------------------------------------------------------------------

    def _confirm_subscription(self, sns: SnsMessage) -> IpnOutcome:
        assert sns.subscribe_url is not None and sns.token is not None
        # Verification already applied both checks; repeated here so the fetch below can never be reached
        # for a topic that is not one of this deployment's sellers' (another merchant's topic in Amazon Pay's
        # account included) or with a URL the trust policy (production: check_sns_subscribe_url) refused.
        try:
            self._authenticity.check_subscription(sns)
        except NotAuthentic as error:
            return IpnOutcome(
                Disposition.NOT_AUTHENTIC, error.reason.value, sns.message_id, fields={"detail": error.detail}
            )
        try:
            self._subscribe(sns.subscribe_url)
        except SubscriptionNotConfirmed as error:
            return IpnOutcome(
                Disposition.UNAVAILABLE,
                SUBSCRIPTION_CONFIRM_FAILED,
                sns.message_id,
                fields={"detail": str(error)},
            )
        return IpnOutcome(
            Disposition.ACCEPTED, SUBSCRIPTION_CONFIRMED, sns.message_id, fields={"topic_arn": sns.topic_arn}
        )

    # -- notifications -------------------------------------------------------------------------------

    def _notification(self, sns: SnsMessage, notification: AmazonPayNotification) -> IpnOutcome:
        def answer(disposition: Disposition, reason: str, **fields: Any) -> IpnOutcome:
            refund_id = fields.pop("refund_id", None)
            base = {"notification_reference_id": notification.notification_reference_id}
            return IpnOutcome(
                disposition,
                reason,
                sns.message_id,
                notification.notification_type,
                refund_id,
                {**base, **fields},
            )

        if notification.is_sample:
            return answer(Disposition.ACCEPTED, SAMPLE_IGNORED)
        environment = notification.release_environment
        if environment is not None and environment != self._release_environment:
            return answer(Disposition.ACCEPTED, ENVIRONMENT_IGNORED, release_environment=environment)
        if notification.is_v2:
            try:
                return self._v2(notification, answer)
            except AmazonPayError as error:
                if not error.retryable:
                    raise
                return answer(Disposition.UNAVAILABLE, AMAZON_PAY_UNAVAILABLE, error=error.code)
        if notification.notification_type != PAYMENT_REFUND:
            first = self._store.record_ipn_once(
                notification.notification_reference_id, IPN_DEDUPE_TTL, now=self._clock()
            )
            return answer(Disposition.ACCEPTED, ACKNOWLEDGED if first else DUPLICATE)
        try:
            details = refund_details_from_xml(notification.notification_data)
        except MalformedXml as error:
            return answer(Disposition.MALFORMED, REFUND_DETAILS_INVALID, detail=str(error))
        state = reported_attempt_state(details.refund_status.state)
        if state is None or state is AttemptState.REQUESTED:
            return answer(
                Disposition.MALFORMED,
                REFUND_DETAILS_INVALID,
                detail="RefundStatus/State is not a refund state",
            )
        try:
            return self._refund(notification, details, state, answer)
        except AmazonPayError as error:
            if not error.retryable:
                raise
            return answer(Disposition.UNAVAILABLE, AMAZON_PAY_UNAVAILABLE, error=error.code)

    def _refund(
        self,
        notification: AmazonPayNotification,
        details: RefundDetails,
        state: AttemptState,
        answer: Callable[..., IpnOutcome],
    ) -> IpnOutcome:
        report = reported(details, amazon_capture_id=None, seller_id=notification.seller_id)
        named_id = named_refund_id(details.refund_reference_id)
        named = self._store.get_refund(named_id) if named_id is not None else None
        if named is None or classify(report, named) is None:
            mismatch = (
                named.refund_id if named is not None and named.seller_id != notification.seller_id else None
            )
            return self._external(
                notification, details, report, answer, named=named, seller_mismatch=mismatch
            )
        return self._apply(notification, named, details, details.refund_reference_id, state, answer)

    def _apply(
        self,
        notification: AmazonPayNotification,
        named: Refund,
        details: RefundDetails,
        refund_reference_id: str,
        state: AttemptState,
        answer: Callable[..., IpnOutcome],
    ) -> IpnOutcome:
        """Apply Amazon's report of one of our attempts (monotonic, idempotent by the IPN's id)."""
        outcome = AttemptOutcome(
            state=state,
            cause=f"ipn:{notification.notification_reference_id}",
            reason_code=details.refund_status.reason_code,
            amazon_refund_id=details.amazon_refund_id,
            refund_reference_id=refund_reference_id,
        )
        report = reported(details, amazon_capture_id=None, seller_id=notification.seller_id)
        try:
            transition = self._store.transition(
                named.refund_id,
                lambda current: apply_observation(
                    current, outcome, at=self._clock(), max_processing_failure_retries=self._max_retries
                ),
            )
        except RefundNotStored:  # pragma: no cover - refunds are never deleted
            return self._external(notification, details, report, answer, named=None)
        stored = transition.refund
        if not transition.changed:
            return answer(
                Disposition.ACCEPTED, DUPLICATE, refund_id=stored.refund_id, refund_status=stored.status.value
            )
        if state in (AttemptState.COMPLETED, AttemptState.DECLINED) and _attempt_now(transition, outcome):
            self._on_attempt_outcome(transition, outcome)
        late = transition.before is not None and len(stored.late_observations) > len(
            transition.before.late_observations
        )
        return answer(
            Disposition.ACCEPTED,
            PROCESSED,
            refund_id=stored.refund_id,
            refund_status=stored.status.value,
            previous_status=transition.before.status.value if transition.before else None,
            late=late,
        )

    # -- Amazon Pay API v2 ---------------------------------------------------------------------------

    def _v2(self, notification: AmazonPayNotification, answer: Callable[..., IpnOutcome]) -> IpnOutcome:
        """A v2 IPN names an object and carries no state: a REFUND is read with Get Refund, whose answer
        names its charge, and applied to that charge's ledger (`_v2_refund`). A CHARGEBACK is recorded
        against its charge permission (`_v2_chargeback`). Other objects (CHARGE, CHARGE_PERMISSION, ...)
        are acknowledged once."""
        object_id = notification.object_id or ""
        if notification.object_type == V2_CHARGEBACK:
            return self._v2_chargeback(notification, answer)
        if notification.object_type != V2_REFUND:
            first = self._store.record_ipn_once(
                notification.notification_reference_id, IPN_DEDUPE_TTL, now=self._clock()
            )
            return answer(
                Disposition.ACCEPTED,
                ACKNOWLEDGED if first else DUPLICATE,
                object_type=notification.object_type,
            )
        details = self._read_v2_refund(notification.seller_id, object_id)
        state = reported_attempt_state(details.refund_status.state)
        if state is None or details.amazon_capture_id is None:
            detail = "Get Refund: not a refund state" if state is None else "Get Refund: no chargeId"
            return answer(Disposition.MALFORMED, REFUND_DETAILS_INVALID, detail=detail)
        return self._v2_refund(notification, details, state, answer)

    def _read_v2_refund(self, seller_id: str, amazon_refund_id: str) -> RefundDetails:
        return self._amazon_pay().get_refund_details(
            qualified_id(PaymentApi.V2, amazon_refund_id),
            seller_id=seller_id,
            deadline=time.monotonic() + AMAZON_PAY_DEADLINE_SECONDS,
        )

    def _v2_refund(
        self,
        notification: AmazonPayNotification,
        details: RefundDetails,
        state: AttemptState,
        answer: Callable[..., IpnOutcome],
    ) -> IpnOutcome:
        """A v2 refund, as Get Refund just read it, on its charge (`details.amazon_capture_id`).

        v2 refunds carry no reference id, so the refund is looked for among the attempts the charge's
        ledger knows (`known_refunds`: ours on that charge, by Amazon's refund id):
        - ours → applied like a v1 refund IPN (monotonic, idempotent by the IPN's id; a final refund that
          learns nothing new answers `duplicate`, a contradiction is kept as a late observation);
        - not found while one of our refunds ON THAT CHARGE has an attempt sent but unanswered
          (`capture_refunds.sent_unanswered`: its Create Refund answer, which names the refund id, is not
          recorded yet) → it may be that attempt: 503 `v2_refund_not_placed_yet`, so SNS delivers it
          again once the answer is recorded rather than it being taken for someone else's;
        - otherwise it is a refund by others (`_v2_external`)."""
        charge_id = details.amazon_capture_id
        assert charge_id is not None
        known = self._store.known_refunds(charge_id)
        refunds = known.refunds.values() if known is not None else ()
        for refund in refunds:
            if refund.seller_id != notification.seller_id:
                continue
            for attempt in refund.attempts:
                if attempt.amazon_refund_id == details.amazon_refund_id:
                    return self._apply(
                        notification, refund, details, attempt.refund_reference_id, state, answer
                    )
        if any(sent_unanswered(r) for r in refunds):
            return answer(
                Disposition.UNAVAILABLE,
                V2_REFUND_NOT_PLACED_YET,
                amazon_refund_id=details.amazon_refund_id,
                amazon_charge_id=parse_qualified_id(charge_id)[1],
            )
        return self._v2_external(notification, details, state, known, answer)

    def _v2_external(
        self,
        notification: AmazonPayNotification,
        details: RefundDetails,
        state: AttemptState,
        known: KnownRefunds | None,
        answer: Callable[..., IpnOutcome],
    ) -> IpnOutcome:
        """A refund by others on a v2 charge (Seller Central, the seller's other systems, an A-to-z claim, a
        chargeback: v2 refunds carry no type), recorded on the charge's ledger by its refund id:
        - `RefundInitiated` (Pending): recorded Pending and counted against the charge at once (Amazon's
          cap counts it too; Get Charge's refundedAmount will not show it until it is Refunded). A charge
          without a ledger gets one, opened from Get Charge with this refund in it (`_v2_open_ledger`).
        - `Refunded` (Completed): a Pending entry moves to Completed (it keeps counting, now as part of
          refundedAmount). Without an entry the charge is surveyed (`survey_capture`: refundedAmount
          explains it as `v2-refunded-{total}`); without a ledger nothing is recorded
          (`external_refund_no_ledger`): refundedAmount counts it when a ledger opens.
        - `Declined`: a Pending entry becomes Declined and is no longer counted (Amazon's v2 refund
          states end in Refunded or Declined; a declined refund moved no money, core/ledger.py); no entry:
          nothing moved, acknowledged.
        Each entry is written once and moved with a conditional write, so redeliveries and reordered IPNs
        change nothing more (a Pending IPN read after its refund settled reads the settled state)."""
        charge_id = details.amazon_capture_id
        assert charge_id is not None
        amazon_refund_id = details.amazon_refund_id
        fields: dict[str, Any] = {
            "amazon_refund_id": amazon_refund_id,
            "amazon_charge_id": parse_qualified_id(charge_id)[1],
            "refund_state": state.value,
        }
        entry = (
            next((e for e in known.externals if e.amazon_refund_id == amazon_refund_id), None)
            if known is not None
            else None
        )
        if state is AttemptState.PENDING:
            if entry is not None:
                return answer(Disposition.ACCEPTED, EXTERNAL_DUPLICATE, **fields)
            try:
                if known is None:
                    return self._v2_open_ledger(notification, details, answer, fields)
                recorded = self._store.record_external_refund(
                    charge_id,
                    amazon_refund_id,
                    details.refund_amount.amount,
                    details.refund_amount.currency_code,
                    UNTYPED_REFUND_TYPE,
                    at=self._clock(),
                    state=state.value,
                )
            except CurrencyMismatch:
                return answer(Disposition.ACCEPTED, EXTERNAL_CURRENCY_MISMATCH, **fields)
            return answer(
                Disposition.ACCEPTED, EXTERNAL_RECORDED if recorded else EXTERNAL_DUPLICATE, **fields
            )
        if entry is not None:
            moved = self._store.update_external_refund_state(
                charge_id, amazon_refund_id, state.value, at=self._clock()
            )
            return answer(Disposition.ACCEPTED, EXTERNAL_SETTLED if moved else EXTERNAL_DUPLICATE, **fields)
        if state is AttemptState.DECLINED:
            return answer(Disposition.ACCEPTED, EXTERNAL_DECLINED, **fields)
        if known is None:
            return answer(Disposition.ACCEPTED, EXTERNAL_NO_LEDGER, **fields)
        client = self._amazon_pay()
        deadline = time.monotonic() + AMAZON_PAY_DEADLINE_SECONDS
        charge = client.get_capture_details(charge_id, seller_id=notification.seller_id, deadline=deadline)
        survey_capture(
            self._store, client, charge, notification.seller_id, deadline=deadline, now=self._clock
        )
        return answer(Disposition.ACCEPTED, EXTERNAL_SURVEYED, **fields)

    def _v2_open_ledger(
        self,
        notification: AmazonPayNotification,
        details: RefundDetails,
        answer: Callable[..., IpnOutcome],
        fields: dict[str, Any],
    ) -> IpnOutcome:
        """A refund by others still `RefundInitiated` on a charge without a ledger: the ledger is opened
        (the request path's opening, `capture_refunds.ledger_seed`) from Get Charge with this refund in
        it, in one write. The refund is read again after Get Charge: only if it is still RefundInitiated
        then was it left out of the refundedAmount just read, so it is counted once; if it settled
        meanwhile it is left to refundedAmount (acknowledged, no ledger opened). Raises CurrencyMismatch."""
        charge_id = details.amazon_capture_id
        assert charge_id is not None
        seller_id = notification.seller_id
        client = self._amazon_pay()
        deadline = time.monotonic() + AMAZON_PAY_DEADLINE_SECONDS
        charge = client.get_capture_details(charge_id, seller_id=seller_id, deadline=deadline)
        again = self._read_v2_refund(seller_id, details.amazon_refund_id)
        if reported_attempt_state(again.refund_status.state) is not AttemptState.PENDING:
            return answer(Disposition.ACCEPTED, EXTERNAL_NO_LEDGER, **fields)
        pending = reported(again, amazon_capture_id=charge_id, seller_id=seller_id)
        seed = ledger_seed(
            self._store,
            client,
            charge,
            seller_id,
            allow_over_refund=self._allow_over_refund,
            deadline=deadline,
            pending=(pending,),
            ledger_id=charge_id,
        )
        self._store.record_external_refund(
            charge_id,
            again.amazon_refund_id,
            again.refund_amount.amount,
            again.refund_amount.currency_code,
            UNTYPED_REFUND_TYPE,
            at=self._clock(),
            state=AttemptState.PENDING.value,
            ledger_seed=seed,
        )
        return answer(Disposition.ACCEPTED, EXTERNAL_RECORDED, **fields)

    def _v2_chargeback(
        self, notification: AmazonPayNotification, answer: Callable[..., IpnOutcome]
    ) -> IpnOutcome:
        """A CHARGEBACK IPN names the chargeback (`ObjectId`) and its charge permission, not the charge: it
        is recorded against the seller's charge permission, once per chargeback id, and nothing else is
        done now. No Amazon call is needed (the envelope, topic and seller are verified). What it changes:
        every ProcessingFailure retry on a charge under that permission is refused from then on
        (`CaptureSurvey.retry_forbidden`, checked at CheckEligibility and again before the retry's Create
        Refund); new refunds go on within the charge's headroom (docs/DESIGN.md)."""
        permission = notification.charge_permission_id
        fields = {"object_type": V2_CHARGEBACK, "chargeback_id": notification.object_id}
        if permission is None:
            # Answered 400 so it is counted and logged as malformed; SNS would redeliver it unchanged.
            return answer(Disposition.MALFORMED, CHARGEBACK_WITHOUT_PERMISSION, **fields)
        recorded = self._store.record_chargeback(
            notification.seller_id, permission, notification.object_id or "", at=self._clock()
        )
        return answer(
            Disposition.ACCEPTED,
            CHARGEBACK_RECORDED if recorded else DUPLICATE,
            charge_permission_id=permission,
            **fields,
        )

    def _external(
        self,
        notification: AmazonPayNotification,
        details: RefundDetails,
        report: ReportedRefund,
        answer: Callable[..., IpnOutcome],
        *,
        named: Refund | None,
        seller_mismatch: str | None = None,
    ) -> IpnOutcome:
        """A refund this service did not issue (core/classification.py): recorded on its capture's ledger.
        A Declined one moved no money and is only acknowledged: the capture's refunds are read again before
        a retry (use_cases/capture_refunds.py), which records it with its type."""
        fields: dict[str, Any] = {
            "amazon_refund_id": details.amazon_refund_id,
            "refund_type": details.refund_type,
        }
        if seller_mismatch is not None:
            fields["seller_mismatch_refund_id"] = seller_mismatch
        elif named is not None:
            fields["named_refund_id"] = named.refund_id  # its reference looks like ours; it is not
        if report.state == AttemptState.DECLINED.value:
            return answer(Disposition.ACCEPTED, EXTERNAL_DECLINED, **fields)
        hint = named.amazon_capture_id if named is not None and seller_mismatch is None else None
        located = self._locate_capture(notification.seller_id, details.amazon_refund_id, hint)
        if located is None:
            return answer(Disposition.ACCEPTED, EXTERNAL_UNMATCHED, **fields)
        capture = located
        fields["amazon_capture_id"] = capture.amazon_capture_id

        def record(seed: LedgerSeed | None) -> bool:
            return self._store.record_external_refund(
                capture.amazon_capture_id,
                details.amazon_refund_id,
                details.refund_amount.amount,
                details.refund_amount.currency_code,
                details.refund_type,
                at=self._clock(),
                state=report.state,
                ledger_seed=seed,
            )

        try:
            try:
                recorded = record(None)
            except LedgerNotFound:
                recorded = record(self._seed(notification.seller_id, capture))
        except CurrencyMismatch:
            # A fact we cannot count in this ledger's currency; redelivery would not change that.
            return answer(Disposition.ACCEPTED, EXTERNAL_CURRENCY_MISMATCH, **fields)
        return answer(Disposition.ACCEPTED, EXTERNAL_RECORDED if recorded else EXTERNAL_DUPLICATE, **fields)

    def _locate_capture(
        self, seller_id: str, amazon_refund_id: str, hint: str | None = None
    ) -> CaptureDetails | None:
        """The capture of an external refund, confirmed by Amazon (its IdList lists the refund): first the
        capture of the refund of ours its reference id names (`hint`), then our open refunds' captures on
        its order."""
        order = order_reference_of(amazon_refund_id)
        if order is None:
            return None
        candidates = sorted(
            {
                r.amazon_capture_id
                for r in self._store.list_open(limit=MAX_OPEN_REFUNDS_SEARCHED)
                if r.seller_id == seller_id and order_reference_of(r.amazon_capture_id) == order
            }
            - {hint}
        )
        if hint is not None and order_reference_of(hint) == order:
            candidates.insert(0, hint)
        if not candidates:
            return None
        client = self._amazon_pay()
        for capture_id in candidates:
            details = client.get_capture_details(
                capture_id, seller_id=seller_id, deadline=time.monotonic() + AMAZON_PAY_DEADLINE_SECONDS
            )
            if amazon_refund_id in details.id_list:
                return details
        return None

    def _seed(self, seller_id: str, capture: CaptureDetails) -> LedgerSeed:
        """The capture's opening (its refunds read and classified); only when its ledger does not exist."""
        return ledger_seed(
            self._store,
            self._amazon_pay(),
            capture,
            seller_id,
            allow_over_refund=self._allow_over_refund,
            deadline=time.monotonic() + AMAZON_PAY_DEADLINE_SECONDS,
        )


def _attempt_now(transition: Transition, outcome: AttemptOutcome) -> bool:
    """Whether this transition moved an attempt into the outcome's state (not merely recorded it late)."""
    before = {a.attempt: a.state for a in transition.before.attempts} if transition.before else {}
    return any(
        a.state is outcome.state and before.get(a.attempt) is not outcome.state
        for a in transition.refund.attempts
    )
