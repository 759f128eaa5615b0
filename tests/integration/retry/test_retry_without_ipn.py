"""When no IPN reaches the waiting retry, the workflow polls GetRefundDetails, boundedly.

A stack of its own: RetryStarter is replaced by one with short outcome timeout and poll interval (the
template's handler passes the production timings), and the simulator drops the retry attempt's IPNs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from amazon_pay_refunds import runtime
from amazon_pay_refunds.use_cases.retry_starter import RetryStarter, RetryTiming
from refunds_local.stack import EmbeddedStack

from .support import (
    entered_states,
    finished_execution,
    processing_failure_note,
    request_refund,
    wait_for_status,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SHORT = RetryTiming(retry_delay_seconds=1, outcome_timeout_seconds=2, poll_interval_seconds=1, max_polls=2)


def short_timing_starter(event: dict[str, Any], context: Any) -> dict[str, Any]:
    starter = RetryStarter(runtime.stepfunctions_client(), os.environ["RETRY_WORKFLOW_ARN"], SHORT)
    result = starter.start(event["detail"])
    return {"outcome": result.outcome, "execution_name": result.execution_name}


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    overrides = {"RetryStarterFunction": short_timing_starter}
    with EmbeddedStack(
        port=0,
        sim_port=0,
        throttling=False,
        settle_seconds=1.0,
        retry_delay_seconds=1,
        handler_overrides=overrides,
    ) as running:
        yield running


def drop_the_retry_attempts_ipns(stack: EmbeddedStack, refund_id: str) -> None:
    wait_for_status(stack, refund_id, "RetryScheduled")
    stack.simulator.wait_for_ipn_idle()
    stack.simulator.add_ipn_fault("drop", count=2)  # the retry's Pending and final IPNs


def test_without_an_ipn_the_retry_outcome_comes_from_get_refund_details(stack: EmbeddedStack) -> None:
    capture_id = stack.simulator.create_capture("100.00", "USD")
    request_refund(stack, "pf-lost-ipn", capture_id, processing_failure_note(times=1))
    drop_the_retry_attempts_ipns(stack, "pf-lost-ipn")

    refund = wait_for_status(stack, "pf-lost-ipn", "Completed")
    execution = finished_execution(stack, "pf-lost-ipn-attempt-1")

    states = entered_states(stack, execution["executionArn"])
    assert states[-4:] == ["AwaitOutcome", "PollOutcome", "OutcomeAfterPoll", "RefundCompleted"]
    assert "OutcomeReceived" not in states
    assert refund["history"][-1]["cause"] == "poll:GetRefundDetails"


def test_a_retry_still_pending_after_the_polls_is_left_pending_for_the_reconciler(
    stack: EmbeddedStack,
) -> None:
    capture_id = stack.simulator.create_capture("100.00", "USD")
    request_refund(stack, "pf-slow", capture_id, processing_failure_note(times=1))
    drop_the_retry_attempts_ipns(stack, "pf-slow")
    stack.simulator.market.settle_seconds = 3600.0  # Amazon takes hours for the retry
    try:
        execution = finished_execution(stack, "pf-slow-attempt-1")
    finally:
        stack.simulator.market.settle_seconds = 1.0

    states = entered_states(stack, execution["executionArn"])
    assert SHORT.max_polls == 2
    assert states[-7:] == [
        "AwaitOutcome",
        "PollOutcome",
        "OutcomeAfterPoll",
        "WaitBeforePoll",
        "PollOutcome",
        "OutcomeAfterPoll",
        "LeftPendingForReconciler",
    ]
    assert execution["status"] == "SUCCEEDED"
    refund = wait_for_status(stack, "pf-slow", "Pending")
    assert [(a["attempt"], a["state"]) for a in refund["attempts"]] == [(1, "Declined"), (2, "Pending")]
