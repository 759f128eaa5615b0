"""The submission step shared by every use case that calls Amazon's Refund: the reconciler's first
attempt, the API's first attempt, a retry attempt of the RetryWorkflow.

`submit_attempt` is the one home of the Refund call: never without a reservation, never when Amazon's own
record of the capture shows that the attempt no longer fits (`check_capture_headroom`), and Amazon's answer
recorded through the lifecycle (`record_observation`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    ManualActionRequired,
    Observation,
    PermanentlyRefused,
    apply_observation,
)
from amazon_pay_refunds.core.models import AttemptState, Refund, reported_attempt_state
from amazon_pay_refunds.ports import (
    AmazonErrorObserver,
    AmazonPayError,
    AmazonPayPort,
    RefundStorePort,
    StoreBusy,
    ignore_amazon_error,
)
from amazon_pay_refunds.use_cases.capture_refunds import survey_capture

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


def no_faults(point: FaultPoint, refund: Refund) -> None:
    """The default fault hook: tests inject one that raises at a named point to simulate a crash."""


def deadline_for(
    remaining_millis: int,
    *,
    margin_seconds: float = SAFETY_MARGIN_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> float:
    """The absolute deadline (time.monotonic) for Amazon calls, given the invocation's remaining time."""
    budget = min(remaining_millis / 1000 - margin_seconds, MAX_AMAZON_SECONDS)
    return monotonic() + max(budget, 0.0)


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
    first_send: bool = False,
) -> Submission:
    """Send the refund's latest attempt (its own RefundReferenceId) to Amazon and record the answer.

    The one home of the Refund call: attempt 1 from the API and the reconciler, a retry attempt from the
    retry workflow. Never sends a refund without its reservation, nor one that Amazon's own record of the
    capture shows no longer fits (see `check_capture_headroom`; skipped when `capture_checked`: the
    ledger was just opened from GetCaptureDetails in this invocation). `first_send`: the caller knows the
    attempt was never sent (it was reserved or created in this invocation), so it cannot be at Amazon.
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
            store,
            amazon_pay,
            refund,
            deadline=deadline,
            now=now,
            on_amazon_error=on_amazon_error,
            first_send=first_send,
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
            refund.ledger_id,
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
        if outcome_unknown(error):
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
        attempt.attempt,
        details.amazon_refund_id,
        # Refund answers Pending; anything unexpected is settled by an IPN or a poll.
        reported_attempt_state(status.state) or AttemptState.PENDING,
        status.reason_code,
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
    first_send: bool = False,
) -> Literal["fits", "exceeded", "unknown"] | Hold:
    """Whether the capture, as Amazon records it, still has room for this (already reserved) attempt.

    The ledger learns of refunds this service did not issue (A-to-z claims, chargebacks, Seller Central,
    the seller's other systems) from their IPNs, which may still be on their way or be lost. So before each
    Refund call the capture's refunds are read and classified (use_cases/capture_refunds.py) and the
    external ones recorded; the attempt is sent only if the ledger is then not overdrawn. A retry attempt
    (n >= 2) is also held when an A-to-z or chargeback refund is now on the capture (Amazon's procedure),
    and any attempt when Amazon lists a refund on the capture that it will not describe. An attempt that
    Amazon already made (its answer was lost) is always sent again unchanged: that creates nothing and
    learns what Amazon made. "unknown": Amazon did not answer (try later).

    `first_send` (API v2): the attempt was never sent, so it is not what Get Charge's refundedAmount may
    hold, and refunds by others it does not explain are recorded first. It is held for a person when
    refundedAmount that is either another unanswered attempt of ours or a refund by others (v2 lists no
    refunds on a charge: they cannot be told apart) would leave it no room: sending it could overdraw the
    charge, holding it moves no money. (A resend is never held for this: it creates nothing if Amazon made
    that attempt, and its answer is how the ledger learns.)
    """
    capture_id, seller_id = refund.ledger_id, refund.seller_id
    attempt = refund.latest_attempt.attempt
    unsent = frozenset({(refund.refund_id, attempt)}) if first_send else frozenset()
    try:
        capture = amazon_pay.get_capture_details(capture_id, seller_id=seller_id, deadline=deadline)
        survey = survey_capture(
            store, amazon_pay, capture, seller_id, deadline=deadline, now=now, unsent=unsent
        )
    except AmazonPayError as error:
        on_amazon_error("GetCaptureDetails", error)
        if outcome_unknown(error):
            return "unknown"
        return "fits"  # a permanent refusal: Amazon's answer to the Refund call itself will say why
    if survey.known is None:
        return "fits"  # no ledger: nothing reserved against it, so nothing of ours to send
    if (refund.refund_id, refund.latest_attempt.attempt) in survey.ours_unrecorded:
        return "fits"  # Amazon already made this very attempt: the unchanged call only learns its answer
    if survey.hold_reason is not None:
        return Hold(survey.hold_reason)
    if attempt >= 2 and survey.retry_forbidden is not None:
        return Hold(survey.retry_forbidden)
    if survey.known.available < 0:
        return "exceeded"
    if first_send and survey.known.available < survey.ambiguous:
        return Hold(
            f"Charge refunds of {survey.ambiguous} unexplained: an unanswered refund of ours or others'"
        )
    return "fits"


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


def outcome_unknown(error: AmazonPayError) -> bool:
    """Amazon could not be asked, or refused for our own configuration: the same call may be sent again."""
    return error.retryable or error.code in CONFIGURATION_ERROR_CODES
