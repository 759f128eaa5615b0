"""Reading a local stack's retry executions: their names, statuses and the states they went through."""

from __future__ import annotations

import json
import time
from typing import Any

from refunds_local.clients import storefront_of
from refunds_local.stack import EmbeddedStack

WAIT_SECONDS = 45.0
FINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def processing_failure_note(times: int | None = None) -> str:
    """Our simulator's extension: decline the first `times` refunds carrying this note (None: all)."""
    spec: dict[str, Any] = {"State": "Declined", "ReasonCode": "ProcessingFailure"}
    if times is not None:
        spec["Times"] = times
    return json.dumps({"SandboxSimulation": spec})


def request_refund(stack: EmbeddedStack, refund_id: str, capture_id: str, note: str | None = None) -> None:
    body = {
        "refund_id": refund_id,
        "amazon_capture_id": capture_id,
        "amount": "10.00",
        "currency_code": "USD",
    }
    if note is not None:
        body["seller_refund_note"] = note
    answer = storefront_of(stack).post_refund(body)
    assert answer.status == 202, answer


def wait_for_status(stack: EmbeddedStack, refund_id: str, *statuses: str) -> dict[str, Any]:
    refund = storefront_of(stack).wait_for_status(refund_id, set(statuses), timeout=WAIT_SECONDS)
    assert refund.get("status") in statuses, refund
    return refund


def executions(stack: EmbeddedStack) -> list[dict[str, Any]]:
    sfn = stack.client("stepfunctions")
    found: list[dict[str, Any]] = sfn.list_executions(stateMachineArn=stack.state_machines["RetryWorkflow"])[
        "executions"
    ]
    return found


def executions_of(stack: EmbeddedStack, refund_id: str) -> list[dict[str, Any]]:
    return [e for e in executions(stack) if e["name"].startswith(f"{refund_id}-attempt-")]


def finished_execution(stack: EmbeddedStack, name: str) -> dict[str, Any]:
    """The execution `name` once it ended (waits for it to exist and to end)."""
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        [*found] = [e for e in executions(stack) if e["name"] == name]
        if found:
            described: dict[str, Any] = sfn.describe_execution(executionArn=found[0]["executionArn"])
            if described["status"] in FINAL_EXECUTION:
                return described
        time.sleep(0.2)
    raise AssertionError(f"execution {name} did not end within {WAIT_SECONDS} s")


def entered_states(stack: EmbeddedStack, execution_arn: str) -> list[str]:
    """The states the execution entered, in order (GetExecutionHistory)."""
    sfn = stack.client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def detail_types(stack: EmbeddedStack, refund_id: str) -> list[str]:
    return [event["detail-type"] for event in stack.events(refund_id)]


def amazon_refunds_on(stack: EmbeddedStack, capture_id: str) -> list[dict[str, Any]]:
    view: dict[str, Any] = stack.simulator.capture_view(capture_id)
    return list(view["refunds"])
