"""Execution environments (environments.py): a process each, a pool per function, as Lambda runs them."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from refunds_local.lambdas import FunctionError, FunctionTimedOut, LambdaFunction
from refunds_local.stack import EmbeddedStack

from .handlers import StreamRecorder

KEY = "local-dev-key"
HANDLERS = "tests.integration.local.environment_handlers"


def invoke_all(function: LambdaFunction, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(function.invoke, events))


def test_concurrent_invocations_run_at_once_each_in_a_process_of_its_own(stack: EmbeddedStack) -> None:
    function = stack.function("EventPublisherFunction")
    function.override(f"{HANDLERS}.identify")
    answers = invoke_all(function, [{"sleep": 0.5}] * 4)

    pids = {answer["pid"] for answer in answers}
    assert len(pids) == 4 and os.getpid() not in pids
    assert len({answer["tmp"] for answer in answers}) == 4  # a /tmp each
    assert max(a["started"] for a in answers) < min(a["ended"] for a in answers)  # all ran at once
    assert {a["function_name"] for a in answers} == {function.name}
    assert len({a["request_id"] for a in answers}) == 4
    assert function.pool.size == 4


def test_each_environment_signs_with_its_functions_role(stack: EmbeddedStack) -> None:
    function = stack.function("EventPublisherFunction")
    function.override(f"{HANDLERS}.identify")
    assert function.principal is not None
    assert function.invoke({})["access_key_id"] == function.principal.access_key_id


def test_an_idle_environment_is_reused_with_its_module_state_and_a_cold_start_is_logged(
    stack: EmbeddedStack, caplog: pytest.LogCaptureFixture
) -> None:
    function = stack.function("EventPublisherFunction")
    with caplog.at_level(logging.INFO, logger="refunds_local.environments"):
        function.override(f"{HANDLERS}.identify")
        first, second = function.invoke({}), function.invoke({})
    assert first["pid"] == second["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)
    cold_starts = [r.getMessage() for r in caplog.records if "cold start" in r.getMessage()]
    assert len(cold_starts) == 1 and cold_starts[0].startswith("EventPublisherFunction: cold start")


def test_environments_idle_past_their_time_are_stopped_down_to_one(stack: EmbeddedStack) -> None:
    function = stack.function("EventPublisherFunction")
    function.override(f"{HANDLERS}.identify")
    function.pool.idle_seconds = 0.3
    answers = invoke_all(function, [{"sleep": 0.3}] * 3)
    assert function.pool.size == 3
    deadline = time.monotonic() + 10
    while (
        function.pool.size > 1 or sum(_alive(a["pid"]) for a in answers) > 1
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert function.pool.size == 1
    assert sum(_alive(answer["pid"]) for answer in answers) == 1  # the others' processes have ended


def test_reserved_concurrency_caps_the_environments_and_the_rest_wait(stack: EmbeddedStack) -> None:
    function = stack.function("ReconcilerFunction")  # ReservedConcurrentExecutions: 1 in the template
    assert function.spec.reserved_concurrency == 1
    function.override(f"{HANDLERS}.identify")
    answers = sorted(invoke_all(function, [{"sleep": 0.2}] * 3), key=lambda a: a["started"])
    assert len({answer["pid"] for answer in answers}) == 1
    assert all(earlier["ended"] <= later["started"] for earlier, later in itertools.pairwise(answers))


def test_what_an_environment_prints_reaches_this_process_line_by_line(
    stack: EmbeddedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    function = stack.function("EventPublisherFunction")
    function.override(f"{HANDLERS}.identify")
    capsys.readouterr()
    answers = invoke_all(function, [{"marker": n, "sleep": 0.1} for n in range(6)])
    out, err = capsys.readouterr()
    printed = [json.loads(line) for line in out.splitlines()]  # whole lines, never two merged
    assert sorted((line["marker"], line["request_id"]) for line in printed) == sorted(
        (n, answer["request_id"]) for n, answer in enumerate(answers)
    )
    assert sorted(line for line in err.splitlines() if line.startswith("to stderr")) == [
        f"to stderr {n}" for n in range(6)
    ]


def test_an_invocation_past_its_timeout_ends_its_environment(stack: EmbeddedStack) -> None:
    function = stack.function("EventPublisherFunction")
    function.override(f"{HANDLERS}.identify")
    before = function.invoke({})["pid"]
    function.spec = dataclasses.replace(function.spec, timeout_seconds=0.5)
    with pytest.raises(FunctionTimedOut, match=r"Task timed out after 0\.50 seconds"):
        function.invoke({"sleep": 30})
    assert function.pool.size == 0
    deadline = time.monotonic() + 5
    while _alive(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(before)
    assert function.invoke({})["pid"] != before  # a new environment


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_handler_error_comes_back_with_its_type_and_traceback(stack: EmbeddedStack) -> None:
    function = stack.function("EventPublisherFunction")
    function.override(f"{HANDLERS}.raises")
    with pytest.raises(FunctionError) as raised:
        function.invoke({})
    assert raised.value.error_type == "RuntimeError"
    assert str(raised.value) == "the handler blew up in its environment"
    assert "Traceback" in raised.value.text


def test_no_answer_within_the_integration_timeout_is_a_504(stack: EmbeddedStack) -> None:
    """API Gateway's INTEGRATION_TIMEOUT ("Endpoint request timed out"), shaped by the template's
    DEFAULT_5XX gateway response as the deployed API shapes it."""
    stack.function("RefundApiFunction").override(f"{HANDLERS}.slow_api")
    stack.gateway.integration_timeout = 0.5  # API Gateway's is 29 s; the function's Timeout is 25 s
    answer = requests.get(f"{stack.api_url}/refunds/r1?seconds=3", headers={"x-api-key": KEY}, timeout=10)
    assert answer.status_code == 504
    assert answer.json() == {
        "error": {"code": "INTEGRATION_TIMEOUT", "message": "Endpoint request timed out"}
    }


def test_a_request_waiting_past_the_integration_timeout_for_an_environment_is_a_504(
    stack: EmbeddedStack,
) -> None:
    """At the function's concurrency limit a request waits for an environment; the wait counts."""
    function = stack.function("RefundApiFunction")
    function.override(f"{HANDLERS}.slow_api")
    function.pool.limit = 1
    stack.gateway.integration_timeout = 4.0

    def get(_: int) -> int:
        url = f"{stack.api_url}/refunds/r1?seconds=2.5"
        return requests.get(url, headers={"x-api-key": KEY}, timeout=20).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(get, range(2)))
    assert statuses == [200, 504]  # the second would end 5 s after it arrived


def test_an_answer_within_the_integration_timeout_is_the_handlers(stack: EmbeddedStack) -> None:
    stack.function("RefundApiFunction").override(f"{HANDLERS}.slow_api")
    answer = requests.get(f"{stack.api_url}/refunds/r1?seconds=0.1", headers={"x-api-key": KEY}, timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"slept": 0.1})


def test_the_stream_pump_is_woken_by_a_write_not_by_polling() -> None:
    """It looks at the stream only every 60 s on its own: the record arrives because the write woke it."""
    recorder = StreamRecorder()
    done = threading.Event()

    def recording(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer = recorder(event, context)
        done.set()
        return answer

    with EmbeddedStack(port=0, sim_port=0, handler_overrides={"EventPublisherFunction": recording}) as stack:
        assert stack.pump is not None
        stack.pump.idle_interval = 60.0
        stack.pump.wake()  # the pump's current wait ends; the next one is 60 s
        time.sleep(0.2)
        stack.client("dynamodb").put_item(
            TableName=stack.table_name,
            Item={"pk": {"S": "REFUND#r1"}, "sk": {"S": "REFUND"}, "status": {"S": "Pending"}},
        )
        assert done.wait(10), "the write did not wake the stream pump"
