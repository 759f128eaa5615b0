"""The ProcessingFailure retry (CONTRACT §6, Amazon's procedure): RetryStarter and the RetryWorkflow's steps.

Amazon: a refund Declined with `ProcessingFailure` may be retried after one to two minutes if no A-to-z
Guarantee claim or chargeback refunded the buyer meanwhile and the capture is still `Completed`; if the
retry fails too, refund the buyer another way. Here:

- `RetryStarter` turns one `Refund Declined` event (ProcessingFailure, status `RetryScheduled`) into one
  execution of the RetryWorkflow state machine, named after the declined attempt, so a duplicate event
  starts nothing (ExecutionAlreadyExists counts as started).
- `RetrySteps` are the workflow's Lambda steps (statemachine/retry.asl.json): `check_eligibility`,
  `start_attempt` (through `submission.submit_attempt`, the one home of the Refund call),
  `await_outcome` (stores the task token the IPN handler resumes; raises OutcomeAlreadyKnown when the IPN
  came first), `poll_outcome` (the stored outcome, else GetRefundDetails) and `require_manual_action`.
- `resume_waiting_retry` is called by the IPN handler when an IPN settled a retry attempt: it sends the
  outcome to the waiting execution (SendTaskSuccess for Completed, SendTaskFailure `RetryAttemptDeclined`
  for Declined).

What a declined retry leads to is the lifecycle's decision (core/lifecycle.py): `RetryScheduled` again
while retries remain (a new `Refund Declined` event, a new execution), else `ManualActionRequired`.
Every step is idempotent: Step Functions may run any of them again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from amazon_pay_refunds.config import ConfigurationError
from amazon_pay_refunds.core.classification import REASON_A_TO_Z, REASON_CHARGEBACK
from amazon_pay_refunds.core.lifecycle import (
    AttemptOutcome,
    ManualActionRequired,
    NewAttemptStarted,
    Transition,
    TransitionNotAllowed,
    apply_observation,
)
from amazon_pay_refunds.core.models import (
    TERMINAL_ATTEMPT_STATES,
    Attempt,
    AttemptState,
    Refund,
    RefundStatus,
    reported_attempt_state,
)
from amazon_pay_refunds.core.references import is_valid_refund_id
from amazon_pay_refunds.core.retry_eligibility import Eligibility, assess_eligibility
from amazon_pay_refunds.ports import (
    AmazonErrorObserver,
    AmazonPayError,
    AmazonPayPort,
    RefundDetails,
    RefundStorePort,
    StoreBusy,
    StoreError,
    TaskCallbackPort,
    TaskTokenPort,
    ignore_amazon_error,
)
from amazon_pay_refunds.use_cases.capture_refunds import polled_outcome, survey_capture
from amazon_pay_refunds.use_cases.submission import submit_attempt

logger = logging.getLogger(__name__)

# Reasons stored on the refund (its reason_code) when a person must refund the buyer another way.
REASON_WORKFLOW_FAILED = "retry workflow failed"
# The error a declined retry attempt resumes its waiting execution with (statemachine/retry.asl.json).
ATTEMPT_DECLINED_ERROR = "RetryAttemptDeclined"
# Step Functions refuses a second outcome for a token: the execution already moved on. Not an error here.
_SETTLED_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})

Decision = Literal["eligible", "not_eligible", "not_needed"]
T = TypeVar("T")


class RetryStepError(Exception):
    """Base of the errors a step raises on purpose; the state machine retries them by class name."""


class AmazonPayUnavailable(RetryStepError):
    """Amazon could not be asked, or its answer is unknown: the same step may be run again safely."""


class StoreUnavailable(RetryStepError):
    """The refunds table stayed busy: the same step may be run again safely."""


class OutcomeAlreadyKnown(RetryStepError):
    """AwaitOutcome found the attempt already settled (its IPN came first): the workflow reads it instead
    of waiting (the state machine catches this error and goes to PollOutcome, which reads the store)."""


class UnknownRefund(RetryStepError):
    """The execution names a refund that does not exist (never expected: executions come from events)."""


# --- the workflow's steps -------------------------------------------------------------------------------


StepResult = dict[str, Any]


def _attempt_result(refund: Refund, number: int, decision: str) -> StepResult:
    attempt = refund.attempt(number)
    return {
        "decision": decision,
        "refund_id": refund.refund_id,
        "attempt": number,
        "attempt_state": attempt.state.value if attempt is not None else "Unknown",
        "attempt_reason_code": attempt.reason_code if attempt is not None else None,
        "refund_status": refund.status.value,
    }


class RetrySteps:
    """The RetryWorkflow's Lambda steps; each takes and returns plain JSON values."""

    def __init__(
        self,
        store: RefundStorePort,
        amazon_pay: AmazonPayPort,
        tokens: TaskTokenPort,
        *,
        max_processing_failure_retries: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_amazon_error: AmazonErrorObserver = ignore_amazon_error,
    ) -> None:
        self._store = store
        self._amazon = amazon_pay
        self._tokens = tokens
        self._max_retries = max_processing_failure_retries
        self._now = now
        self._on_amazon_error = on_amazon_error

    # -- CheckEligibility --

    def check_eligibility(self, refund_id: str, declined_attempt: int, *, deadline: float) -> StepResult:
        """`eligible`, `not_eligible` with the reason, or `not_needed` (the refund moved on meanwhile)."""
        refund = self._refund(refund_id)
        if not self._awaits_retry(refund, declined_attempt):
            return self._decision(refund, "not_needed", None)
        capture = self._amazon_call(
            "GetCaptureDetails",
            lambda: self._amazon.get_capture_details(
                refund.ledger_id, seller_id=refund.seller_id, deadline=deadline
            ),
        )
        survey = self._amazon_call(
            "GetRefundDetails",
            lambda: survey_capture(
                self._store, self._amazon, capture, refund.seller_id, deadline=deadline, now=self._now
            ),
        )
        forbidden = survey.hold_reason or survey.retry_forbidden
        eligibility = (
            assess_eligibility(capture.capture_status.state, ())
            if forbidden is None
            else Eligibility(False, forbidden)
        )
        if eligibility.eligible:
            return self._decision(refund, "eligible", None)
        logger.info("refund %s: retry not eligible: %s", refund_id, eligibility.reason)
        return self._decision(refund, "not_eligible", eligibility.reason)

    def _awaits_retry(self, refund: Refund, declined_attempt: int) -> bool:
        """RetryScheduled after `declined_attempt` declined (or with the retry prepared but not sent)."""
        if refund.status is not RefundStatus.RETRY_SCHEDULED:
            return False
        declined = refund.attempt(declined_attempt)
        if declined is None or declined.state is not AttemptState.DECLINED:
            return False
        latest = refund.latest_attempt
        if latest.attempt == declined_attempt:
            return True
        return latest.attempt == declined_attempt + 1 and latest.state is AttemptState.REQUESTED

    def _refund_details(self, amazon_refund_id: str, seller_id: str, deadline: float) -> RefundDetails:
        return self._amazon_call(
            "GetRefundDetails",
            lambda: self._amazon.get_refund_details(amazon_refund_id, seller_id=seller_id, deadline=deadline),
        )

    # -- StartAttempt --

    def start_attempt(self, refund_id: str, attempt: int, *, deadline: float) -> StepResult:
        """Prepare attempt `attempt` (NewAttemptStarted) and send it to Amazon, unless that was done.

        `not_needed` when the refund no longer awaits this retry. Raises AmazonPayUnavailable when
        Amazon's answer is unknown: the step runs again with the same RefundReferenceId (idempotent).
        """
        refund = self._refund(refund_id)
        created = refund.attempt(attempt) is None
        if created:
            try:
                refund = self._transition(refund_id, NewAttemptStarted(attempt)).refund
            except TransitionNotAllowed as refused:
                logger.info("refund %s: no retry attempt %d: %s", refund_id, attempt, refused)
                return _attempt_result(refused.refund, attempt, "not_needed")
        current = refund.attempt(attempt)
        sendable = (
            current is not None
            and current.state is AttemptState.REQUESTED
            and refund.latest_attempt.attempt == attempt
            and refund.status is RefundStatus.RETRY_SCHEDULED
        )
        if current is None or (current.state is AttemptState.REQUESTED and not sendable):
            return _attempt_result(refund, attempt, "not_needed")
        if sendable:
            submission = submit_attempt(
                self._store,
                self._amazon,
                refund,
                deadline=deadline,
                now=self._now,
                max_processing_failure_retries=self._max_retries,
                on_amazon_error=self._on_amazon_error,
                first_send=created,  # created by this invocation: never sent
            )
            if submission.held is not None:
                return _attempt_result(submission.refund, attempt, "not_needed")
            if submission.outcome_unknown:
                raise AmazonPayUnavailable(
                    f"refund {refund_id} attempt {attempt}: Amazon's answer is unknown"
                )
            refund = submission.refund
            if refund.attempt(attempt) == current:
                raise StoreUnavailable(f"refund {refund_id} attempt {attempt}: Amazon's answer not stored")
        return _attempt_result(refund, attempt, "submitted")

    # -- AwaitOutcome --

    def await_outcome(self, refund_id: str, attempt: int, task_token: str) -> StepResult:
        """Store the token the IPN handler resumes the execution with (adapters/dynamodb/task_tokens.py).

        Then read the attempt: if its outcome is already stored (the IPN came before the token), raise
        OutcomeAlreadyKnown, so that the workflow reads it rather than wait for an IPN that came already.
        """
        self._tokens.put(refund_id, attempt, task_token)
        refund = self._refund(refund_id)
        current = refund.attempt(attempt)
        if current is not None and current.state in TERMINAL_ATTEMPT_STATES:
            raise OutcomeAlreadyKnown(f"refund {refund_id} attempt {attempt} is {current.state.value}")
        return _attempt_result(refund, attempt, "waiting")

    # -- PollOutcome --

    def poll_outcome(self, refund_id: str, attempt: int, polls: int, *, deadline: float) -> StepResult:
        """The attempt's state: as stored if already settled, else from GetRefundDetails (and stored)."""
        refund = self._refund(refund_id)
        current = refund.attempt(attempt)
        if current is not None and current.state not in TERMINAL_ATTEMPT_STATES and current.amazon_refund_id:
            details = self._refund_details(
                refund.amazon_object(current.amazon_refund_id), refund.seller_id, deadline
            )
            state = reported_attempt_state(details.refund_status.state)
            if state is not None:
                refund = self._transition(refund_id, polled_outcome(details, state)).refund
        result = _attempt_result(refund, attempt, "polled")
        result["polls"] = polls + 1
        return result

    # -- RequireManualAction --

    def require_manual_action(self, refund_id: str, reason: str, cause: str) -> StepResult:
        """`ManualActionRequired` with `reason` (unchanged if the refund is final or already there)."""
        refund = self._transition(refund_id, ManualActionRequired(reason=reason, cause=cause)).refund
        return {
            "decision": "manual_action",
            "refund_id": refund_id,
            "refund_status": refund.status.value,
            "reason_code": refund.reason_code,
        }

    # -- plumbing --

    def _refund(self, refund_id: str) -> Refund:
        refund = self._store.get_refund(refund_id) if is_valid_refund_id(refund_id) else None
        if refund is None:
            raise UnknownRefund(f"no refund {refund_id}")
        return refund

    def _transition(self, refund_id: str, observation: Any) -> Transition:
        try:
            return self._store.transition(
                refund_id,
                lambda current: apply_observation(
                    current, observation, at=self._now(), max_processing_failure_retries=self._max_retries
                ),
            )
        except StoreBusy as busy:
            raise StoreUnavailable(str(busy)) from None

    def _decision(self, refund: Refund, decision: Decision, reason: str | None) -> StepResult:
        return {
            "decision": decision,
            "reason": reason,
            "refund_id": refund.refund_id,
            "refund_status": refund.status.value,
        }

    def _amazon_call(self, operation: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except AmazonPayError as error:
            self._on_amazon_error(operation, error)
            if error.retryable:
                raise AmazonPayUnavailable(f"{operation}: {error.code}") from None
            raise


# --- resuming a waiting execution (the IPN handler) -----------------------------------------------------


def send_attempt_outcome(
    stepfunctions: TaskCallbackPort, task_token: str, refund: Refund, attempt: Attempt
) -> bool:
    """Resume the execution waiting on `attempt`: SendTaskSuccess (Completed) or SendTaskFailure
    `RetryAttemptDeclined` (Declined). False when it was not sent: Step Functions no longer waits for the
    token, or could not be reached (logged: the workflow's timeout and GetRefundDetails poll recover).
    """
    outcome = json.dumps(
        {
            "attempt": attempt.attempt,
            "attempt_state": attempt.state.value,
            "attempt_reason_code": attempt.reason_code,
            "refund_status": refund.status.value,
        },
        separators=(",", ":"),
    )
    try:
        if attempt.state is AttemptState.COMPLETED:
            stepfunctions.send_task_success(taskToken=task_token, output=outcome)
        else:
            stepfunctions.send_task_failure(taskToken=task_token, error=ATTEMPT_DECLINED_ERROR, cause=outcome)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _SETTLED_TOKEN_ERRORS:
            logger.info(
                "refund %s attempt %d: no execution waits (%s)", refund.refund_id, attempt.attempt, code
            )
            return False
        logger.warning("refund %s attempt %d: outcome not sent (%s)", refund.refund_id, attempt.attempt, code)
        return False
    except BotoCoreError as error:
        logger.warning(
            "refund %s attempt %d: outcome not sent (%s)", refund.refund_id, attempt.attempt, error
        )
        return False
    return True


def settled_retry_attempts(transition: Transition) -> list[Attempt]:
    """Retry attempts (n ≥ 2: only those have a workflow waiting) this transition settled."""
    before = {a.attempt: a.state for a in transition.before.attempts} if transition.before else {}
    return [
        a
        for a in transition.refund.attempts
        if a.attempt >= 2 and a.state in TERMINAL_ATTEMPT_STATES and before.get(a.attempt) is not a.state
    ]


def resume_retry_executions(
    transition: Transition, tokens: TaskTokenPort, stepfunctions: TaskCallbackPort
) -> int:
    """Send each retry attempt this transition settled to its waiting execution; how many were sent."""
    sent = 0
    for attempt in settled_retry_attempts(transition):
        token = tokens.get(transition.refund.refund_id, attempt.attempt)
        if token is None:
            continue  # no execution waits yet: its AwaitOutcome step will find the outcome stored
        if send_attempt_outcome(stepfunctions, token, transition.refund, attempt):
            sent += 1
    return sent


class ResumeWaitingRetry:
    """The IPN use case's listener: after an IPN stored an attempt's final outcome, resume the RetryWorkflow
    execution waiting for it (SendTaskSuccess for Completed, SendTaskFailure for Declined).

    Only retry attempts (n >= 2) have an execution waiting, so nothing is read for attempt 1. Failures are
    logged, never raised: the IPN is stored, and the waiting execution falls back on GetRefundDetails when
    no outcome reaches it in time. The ports are built on first use (most IPNs settle attempt 1).
    """

    def __init__(
        self, tokens: Callable[[], TaskTokenPort], stepfunctions: Callable[[], TaskCallbackPort]
    ) -> None:
        self._tokens = tokens
        self._stepfunctions = stepfunctions

    def __call__(self, transition: Transition, outcome: AttemptOutcome) -> None:
        del outcome
        if not settled_retry_attempts(transition):
            return
        try:
            resume_retry_executions(transition, self._tokens(), self._stepfunctions())
        except (StoreError, ClientError, BotoCoreError, ConfigurationError) as error:
            logger.warning(
                "refund %s: waiting retry not resumed (%s); its workflow will poll",
                transition.refund.refund_id, type(error).__name__,
            )  # fmt: skip


__all__ = [
    "ATTEMPT_DECLINED_ERROR",
    "REASON_A_TO_Z",
    "REASON_CHARGEBACK",
    "REASON_WORKFLOW_FAILED",
    "AmazonPayUnavailable",
    "OutcomeAlreadyKnown",
    "ResumeWaitingRetry",
    "RetrySteps",
    "StoreUnavailable",
    "UnknownRefund",
    "resume_retry_executions",
    "send_attempt_outcome",
]
