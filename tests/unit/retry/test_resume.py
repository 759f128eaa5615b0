"""resume_waiting_retry's core: an IPN that settles a retry attempt resumes the execution waiting for it."""

from __future__ import annotations

import json
from dataclasses import replace

from amazon_pay_refunds.core.lifecycle import AttemptOutcome, Transition, apply_observation
from amazon_pay_refunds.core.models import AttemptState
from amazon_pay_refunds.use_cases.retries import ATTEMPT_DECLINED_ERROR, resume_retry_executions

from .doubles import (
    FIRST_AMAZON_ID,
    NOW,
    REFUND_ID,
    RETRY_AMAZON_ID,
    MemoryStore,
    MemoryTokens,
    RecordingStepFunctions,
    RetryAmazonPay,
    steps,
    store_with_declined_refund,
)


def retry_pending() -> MemoryStore:
    store, _ = store_with_declined_refund()
    steps(store, RetryAmazonPay()).start_attempt(REFUND_ID, 2, deadline=99.0)
    return store


def settle(
    store: MemoryStore, state: AttemptState, reason: str | None = None, amazon_id: str = RETRY_AMAZON_ID
) -> Transition:
    outcome = AttemptOutcome(state, "ipn:n2", reason, amazon_id)
    return store.transition(
        REFUND_ID,
        lambda current: apply_observation(current, outcome, at=NOW, max_processing_failure_retries=1),
    )


def test_a_completed_retry_attempt_sends_task_success_with_the_stored_token() -> None:
    store, tokens, sfn = retry_pending(), MemoryTokens({(REFUND_ID, 2): "token-2"}), RecordingStepFunctions()
    assert resume_retry_executions(settle(store, AttemptState.COMPLETED), tokens, sfn) == 1
    [sent] = sfn.sent
    assert (sent["operation"], sent["taskToken"]) == ("SendTaskSuccess", "token-2")
    assert json.loads(sent["output"])["attempt_state"] == "Completed"


def test_a_declined_retry_attempt_sends_task_failure_retry_attempt_declined() -> None:
    store, tokens, sfn = retry_pending(), MemoryTokens({(REFUND_ID, 2): "token-2"}), RecordingStepFunctions()
    resume_retry_executions(settle(store, AttemptState.DECLINED, "ProcessingFailure"), tokens, sfn)
    [sent] = sfn.sent
    assert (sent["operation"], sent["error"]) == ("SendTaskFailure", ATTEMPT_DECLINED_ERROR)
    assert json.loads(sent["cause"])["refund_status"] == "ManualActionRequired"


def test_attempt_one_has_no_waiting_execution_so_nothing_is_sent_for_it() -> None:
    store, _ = store_with_declined_refund()
    before = store.refunds[REFUND_ID]
    pending_first = replace(before, attempts=(replace(before.attempts[0], state=AttemptState.PENDING),))
    store.refunds[REFUND_ID] = pending_first
    tokens = MemoryTokens({(REFUND_ID, 1): "never-used"})
    sfn = RecordingStepFunctions()
    transition = settle(store, AttemptState.COMPLETED, amazon_id=FIRST_AMAZON_ID)
    assert transition.refund.attempts[0].state is AttemptState.COMPLETED  # attempt 1 settled now
    assert resume_retry_executions(transition, tokens, sfn) == 0
    assert sfn.sent == []


def test_without_a_stored_token_nothing_is_sent() -> None:
    store, sfn = retry_pending(), RecordingStepFunctions()
    assert resume_retry_executions(settle(store, AttemptState.COMPLETED), MemoryTokens(), sfn) == 0
    assert sfn.sent == []


def test_an_execution_that_no_longer_waits_or_cannot_be_reached_is_not_an_error() -> None:
    tokens = MemoryTokens({(REFUND_ID, 2): "token-2"})
    for code in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ThrottlingException"):
        transition = settle(retry_pending(), AttemptState.COMPLETED)
        assert resume_retry_executions(transition, tokens, RecordingStepFunctions(error_code=code)) == 0
