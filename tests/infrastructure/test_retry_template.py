"""The RetryWorkflow in template.yaml and statemachine/retry.asl.json: routing and the graph."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from amazon_pay_refunds.core import retry_eligibility
from amazon_pay_refunds.use_cases import retries, retry_starter
from tests.support.template import template_functions as _functions

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
ASL_PATH = REPO / "statemachine" / "retry.asl.json"
EVENTS = REPO / "events"
TERMINAL_TYPES = {"Succeed", "Fail"}
LAMBDA_TRANSIENT = {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.SdkClientException"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return loaded


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    return loaded


def _tasks(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in asl["States"].items() if state["Type"] == "Task"}


def _next_states(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for choice in state.get("Choices", []):
        yield choice["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


# --- the rule and the starter ---------------------------------------------------------------------------


def test_the_rule_matches_only_processing_failure_declines_with_a_retry_scheduled_on_the_refunds_bus(
    template: dict[str, Any],
) -> None:
    events = _functions(template)["RetryStarterFunction"]["Events"]
    [rule] = [event["Properties"] for event in events.values() if event["Type"] == "EventBridgeRule"]
    assert rule["EventBusName"] == {"Ref": "RefundsBus"}
    assert rule["Pattern"] == {
        "source": ["amazon-pay-refunds"],
        "detail-type": ["Refund Declined"],
        "detail": {"reason_code": ["ProcessingFailure"], "status": ["RetryScheduled"]},
    }


def test_the_sample_declined_event_is_one_the_rule_routes(template: dict[str, Any]) -> None:
    event = json.loads((EVENTS / "retry_starter" / "refund_declined_processing_failure.json").read_text())
    [rule] = [
        e["Properties"]["Pattern"] for e in _functions(template)["RetryStarterFunction"]["Events"].values()
    ]
    assert event["source"] in rule["source"] and event["detail-type"] in rule["detail-type"]
    for key, allowed in rule["detail"].items():
        assert event["detail"][key] in allowed
    assert retry_eligibility.declined_attempt_to_retry(event["detail"]) == 1


def test_the_starter_is_told_the_retry_workflow(template: dict[str, Any]) -> None:
    starter = _functions(template)["RetryStarterFunction"]
    assert starter["CodeUri"] == "functions/retry_starter/"
    assert starter["Environment"]["Variables"]["RETRY_WORKFLOW_ARN"] == {"Ref": "RetryWorkflow"}


# --- the state machine resource ------------------------------------------------------------------------


def test_the_state_machine_is_built_from_the_asl_file_with_the_steps_function_substituted(
    template: dict[str, Any], asl: dict[str, Any]
) -> None:
    machine = template["Resources"]["RetryWorkflow"]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    properties = machine["Properties"]
    assert properties["DefinitionUri"] == "statemachine/retry.asl.json"
    assert properties["Type"] == "STANDARD"
    substitutions = properties["DefinitionSubstitutions"]
    assert substitutions == {"RetryStepsFunctionArn": {"Fn::GetAtt": ["RetryStepsFunction", "Arn"]}}


def test_the_state_machine_logs_errors_without_execution_data_and_traces(
    template: dict[str, Any],
) -> None:
    properties = template["Resources"]["RetryWorkflow"]["Properties"]
    assert properties["Tracing"] == {"Enabled": True}
    logging = properties["Logging"]
    assert logging["IncludeExecutionData"] is False  # execution data carries task tokens
    [destination] = logging["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
        "Fn::GetAtt": ["RetryWorkflowLogGroup", "Arn"]
    }


# --- the definition ------------------------------------------------------------------------------------


def test_the_definition_is_jsonpath_only(asl: dict[str, Any]) -> None:
    text = ASL_PATH.read_text(encoding="utf-8")
    assert "QueryLanguage" not in asl
    assert "JSONata" not in text and "{%" not in text
    assert all("Assign" not in state and "Arguments" not in state for state in asl["States"].values())


def test_it_waits_the_retry_delay_from_the_input_before_anything_else(asl: dict[str, Any]) -> None:
    first = asl["States"][asl["StartAt"]]
    assert first["Type"] == "Wait"
    assert first["SecondsPath"] == "$.retry_delay_seconds"
    assert first["Next"] == "CheckEligibility"
    assert "retry_delay_seconds" in retry_starter.execution_input("r", 1, retry_starter.RetryTiming(90))


def test_every_input_path_the_definition_reads_is_in_the_starters_input(asl: dict[str, Any]) -> None:
    given = retry_starter.execution_input("r", 1, retry_starter.RetryTiming(90))
    read = set(re.findall(r'"\$\.([a-z_]+)', ASL_PATH.read_text(encoding="utf-8")))
    produced_by_states = {
        "eligibility",
        "submission",
        "outcome",
        "poll",
        "manual_action",
        "manual_action_error",
        "error",
    }
    assert read - produced_by_states <= set(given), read - set(given)


def test_the_outcome_is_awaited_with_a_task_token_and_a_timeout_from_the_input(asl: dict[str, Any]) -> None:
    wait = asl["States"]["AwaitOutcome"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert wait["TimeoutSecondsPath"] == "$.outcome_timeout_seconds"
    catchers = {error: c["Next"] for c in wait["Catch"] for error in c["ErrorEquals"]}
    assert catchers["States.Timeout"] == "PollOutcome"
    assert catchers[retries.OutcomeAlreadyKnown.__name__] == "PollOutcome"
    assert catchers[retries.ATTEMPT_DECLINED_ERROR] == "AttemptDeclined"
    # A declined attempt must not be retried as if the task had failed.
    assert not any("States.TaskFailed" in r["ErrorEquals"] for r in wait["Retry"])


def test_every_task_invokes_the_steps_function_retries_transient_errors_and_catches_everything(
    asl: dict[str, Any],
) -> None:
    retried_by_name = {retries.AmazonPayUnavailable.__name__, retries.StoreUnavailable.__name__}
    for name, state in _tasks(asl).items():
        assert state["Parameters"]["FunctionName"] == "${RetryStepsFunctionArn}", name
        assert state["Resource"].startswith("arn:aws:states:::lambda:invoke"), name
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert LAMBDA_TRANSIENT | retried_by_name <= retried, name
        assert all(r["BackoffRate"] >= 1 and r["MaxAttempts"] >= 1 for r in state["Retry"]), name
        last = state["Catch"][-1]
        assert last["ErrorEquals"] == ["States.ALL"], name
        expected = "ManualActionNotRecorded" if name == "RecordWorkflowFailure" else "RecordWorkflowFailure"
        assert last["Next"] == expected, name


def test_every_failure_ends_in_manual_action_with_the_reason_retry_workflow_failed(
    asl: dict[str, Any],
) -> None:
    record = asl["States"]["RecordWorkflowFailure"]
    payload = record["Parameters"]["Payload"]
    assert (payload["step"], payload["reason"]) == ("require_manual_action", retries.REASON_WORKFLOW_FAILED)
    assert asl["States"][record["Next"]]["Type"] == "Fail"
    assert asl["States"]["UnexpectedOutcome"]["Next"] == "RecordWorkflowFailure"


def test_every_state_is_reachable_and_every_path_ends_in_a_terminal_state(asl: dict[str, Any]) -> None:
    states = asl["States"]
    reachable, frontier = set(), [asl["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name in reachable:
            continue
        reachable.add(name)
        frontier.extend(_next_states(states[name]))
    assert reachable == set(states)
    terminal = {name for name, state in states.items() if state["Type"] in TERMINAL_TYPES}
    ends = set(terminal)
    changed = True
    while changed:  # the states from which some terminal state is reachable
        changed = False
        for name, state in states.items():
            if name not in ends and any(n in ends for n in _next_states(state)):
                ends.add(name)
                changed = True
    assert ends == set(states)


def test_the_not_eligible_path_stores_the_reason_from_the_check(asl: dict[str, Any]) -> None:
    choices = {c["StringEquals"]: c["Next"] for c in asl["States"]["IsEligible"]["Choices"]}
    assert choices == {
        "eligible": "StartAttempt",
        "not_eligible": "RequireManualAction",
        "not_needed": "NothingToRetry",
    }
    payload = asl["States"]["RequireManualAction"]["Parameters"]["Payload"]
    assert payload["reason.$"] == "$.eligibility.reason"
