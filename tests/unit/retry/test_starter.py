"""RetryStarter: one execution per ProcessingFailure decline, none for anything else."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from amazon_pay_refunds.core.retry_eligibility import declined_attempt_to_retry
from amazon_pay_refunds.use_cases.retry_starter import RetryStarter, RetryTiming, execution_name

from .doubles import REFUND_ID, RecordingStepFunctions

STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:RetryWorkflow-x"
# Step Functions: 1-80 characters; no whitespace, brackets, wildcards, special or control characters.
VALID_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")


def declined_detail(**changes: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "refund_id": REFUND_ID,
        "status": "RetryScheduled",
        "reason_code": "ProcessingFailure",
        "attempts": [{"attempt": 1, "state": "Declined", "reason_code": "ProcessingFailure"}],
    }
    detail.update(changes)
    return detail


def starter(stepfunctions: RecordingStepFunctions, delay: int = 90) -> RetryStarter:
    return RetryStarter(stepfunctions, STATE_MACHINE, RetryTiming(retry_delay_seconds=delay))


def test_a_processing_failure_decline_with_a_retry_scheduled_starts_one_named_execution() -> None:
    stepfunctions = RecordingStepFunctions()
    result = starter(stepfunctions, delay=75).start(declined_detail())
    assert (result.outcome, result.execution_name) == ("started", f"{REFUND_ID}-attempt-1")
    [call] = stepfunctions.sent
    assert (call["operation"], call["stateMachineArn"], call["name"]) == (
        "StartExecution",
        STATE_MACHINE,
        f"{REFUND_ID}-attempt-1",
    )
    started = json.loads(call["input"])
    assert started["refund_id"] == REFUND_ID
    assert (started["declined_attempt"], started["attempt"]) == (1, 2)
    assert started["retry_delay_seconds"] == 75
    assert started["poll"] == {"polls": 0}


def test_amazon_rejected_never_starts_an_execution() -> None:
    stepfunctions = RecordingStepFunctions()
    detail = declined_detail(
        reason_code="AmazonRejected",
        status="ManualActionRequired",
        attempts=[{"attempt": 1, "state": "Declined", "reason_code": "AmazonRejected"}],
    )
    assert starter(stepfunctions).start(detail).outcome == "ignored"
    assert stepfunctions.sent == []


def test_a_processing_failure_without_retries_left_starts_nothing() -> None:
    stepfunctions = RecordingStepFunctions()
    assert starter(stepfunctions).start(declined_detail(status="ManualActionRequired")).outcome == "ignored"
    assert stepfunctions.sent == []


def test_the_second_decline_retries_from_the_latest_declined_attempt() -> None:
    attempts = [
        {"attempt": 1, "state": "Declined", "reason_code": "ProcessingFailure"},
        {"attempt": 2, "state": "Declined", "reason_code": "ProcessingFailure"},
    ]
    assert declined_attempt_to_retry(declined_detail(attempts=attempts)) == 2


def test_a_duplicate_event_counts_as_already_started() -> None:
    stepfunctions = RecordingStepFunctions(error_code="ExecutionAlreadyExists")
    result = starter(stepfunctions).start(declined_detail())
    assert (result.outcome, result.execution_name) == ("already_started", f"{REFUND_ID}-attempt-1")


def test_other_start_failures_propagate_so_that_eventbridge_and_lambda_retry() -> None:
    with pytest.raises(ClientError):
        starter(RecordingStepFunctions(error_code="ThrottlingException")).start(declined_detail())


@given(st.text(min_size=1, max_size=120), st.integers(1, 999))
def test_execution_names_always_follow_step_functions_rules(refund_id: str, attempt: int) -> None:
    name = execution_name(refund_id, attempt)
    assert VALID_NAME.fullmatch(name), name
    assert name.endswith(f"-attempt-{attempt}")


def test_distinct_declined_attempts_get_distinct_execution_names() -> None:
    assert execution_name(REFUND_ID, 1) != execution_name(REFUND_ID, 2)
