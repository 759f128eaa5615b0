"""The stack's AWS endpoint: moto one request at a time, Lambda Invoke answered by the stack's functions,
moto's Step Functions engine reaching them, and a callable put in place of a handler (it runs in the test's
process) running one invocation at a time."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from moto.core.config import default_user_config

from refunds_local.stack import EmbeddedStack

from .handlers import Recorder, boom

KEY = "local-dev-key"
FUNCTION = "EventPublisherFunction"  # the fixture's stack does not pump, so nothing else invokes it


def lambda_client(stack: EmbeddedStack) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=stack.aws_url,
        region_name=stack.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(read_timeout=15, retries={"total_max_attempts": 1}),
    )


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"event": event, "function_name": context.function_name, "request_id": context.aws_request_id}


@pytest.mark.parametrize("reference", ["name", "arn", "arn:$LATEST"])
def test_lambda_invoke_of_a_stack_function_runs_its_handler_and_answers_the_result(
    stack: EmbeddedStack, reference: str
) -> None:
    function = stack.function(FUNCTION)
    function.override(echo)
    name = {"name": function.name, "arn": function.arn, "arn:$LATEST": f"{function.arn}:$LATEST"}[reference]
    answer = lambda_client(stack).invoke(FunctionName=name, Payload=json.dumps({"refund_id": "r1"}))
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert answer["ExecutedVersion"] == "$LATEST"
    payload = json.loads(answer["Payload"].read())
    assert payload["event"] == {"refund_id": "r1"}
    assert payload["function_name"] == function.name
    assert payload["request_id"] == answer["ResponseMetadata"]["RequestId"]


def test_a_raising_handler_is_an_unhandled_function_error(stack: EmbeddedStack) -> None:
    stack.function(FUNCTION).override(boom)
    answer = lambda_client(stack).invoke(FunctionName=stack.function(FUNCTION).name, Payload=b"{}")
    assert (answer["StatusCode"], answer["FunctionError"]) == (200, "Unhandled")
    payload = json.loads(answer["Payload"].read())
    assert payload["errorType"] == "RuntimeError"
    assert payload["errorMessage"] == "the handler blew up on purpose"


def test_an_event_invocation_is_accepted_at_once_and_runs_in_the_background(stack: EmbeddedStack) -> None:
    release = threading.Event()
    finished: list[dict[str, Any]] = []

    def waits(event: dict[str, Any], context: Any) -> None:
        release.wait(10)
        finished.append(event)

    stack.function(FUNCTION).override(waits)
    answer = lambda_client(stack).invoke(
        FunctionName=stack.function(FUNCTION).name, InvocationType="Event", Payload=b'{"n": 1}'
    )
    assert answer["StatusCode"] == 202
    assert finished == []
    release.set()
    deadline = time.monotonic() + 10
    while not finished and time.monotonic() < deadline:
        time.sleep(0.02)
    assert finished == [{"n": 1}]


def test_other_functions_are_left_to_moto(stack: EmbeddedStack) -> None:
    client = lambda_client(stack)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="not-a-function-of-this-stack", Payload=b"{}")


def test_a_handler_runs_without_holding_moto(stack: EmbeddedStack) -> None:
    """The handler calls moto while it runs: were moto's lock held, this invocation would never end."""

    def describes_the_stream(event: dict[str, Any], context: Any) -> str:
        # A call the EventPublisher's role allows: the stream it reads.
        described = boto3.client("dynamodbstreams").describe_stream(StreamArn=stack.stream_arn)
        return str(described["StreamDescription"]["TableName"])

    stack.function(FUNCTION).override(describes_the_stream)
    answer = lambda_client(stack).invoke(FunctionName=stack.function(FUNCTION).name, Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == stack.table_name


def test_concurrent_transactions_on_one_item_are_each_applied_once_or_cancelled(stack: EmbeddedStack) -> None:
    """moto's backends are not thread-safe: unserialised, some of these fail with 500s, or apply twice."""
    key = {"pk": {"S": "CAPTURE#c1"}, "sk": {"S": "LEDGER"}}
    stack.client("dynamodb").put_item(TableName=stack.table_name, Item={**key, "available": {"N": "30"}})
    no_retries = Config(retries={"total_max_attempts": 1})

    def reserve(n: int) -> str:
        client = boto3.client(
            "dynamodb", endpoint_url=stack.aws_url, region_name=stack.region, config=no_retries
        )
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": stack.table_name,
                            "Key": key,
                            "UpdateExpression": "SET available = available - :one",
                            "ConditionExpression": "available >= :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": stack.table_name,
                            "Item": {"pk": {"S": f"REFUND#r{n}"}, "sk": {"S": "REFUND"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except client.exceptions.TransactionCanceledException:
            return "cancelled"
        except Exception as error:
            return f"error: {error!r}"
        return "applied"

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(reserve, range(60)))
    assert sorted(set(outcomes)) == ["applied", "cancelled"]
    assert outcomes.count("applied") == 30
    dynamodb = stack.client("dynamodb")
    assert dynamodb.get_item(TableName=stack.table_name, Key=key)["Item"]["available"] == {"N": "0"}
    assert len(dynamodb.scan(TableName=stack.table_name)["Items"]) == 1 + 30


def test_a_function_runs_one_invocation_at_a_time(stack: EmbeddedStack) -> None:
    """Handlers keep the current invocation at module/class level (as Powertools' resolver does)."""
    state: dict[str, Any] = {"current": None, "running": 0, "most": 0}
    lock = threading.Lock()

    def remembers_its_request(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        state["current"] = event["path"]
        time.sleep(0.3)
        answered = state["current"]
        with lock:
            state["running"] -= 1
        return {"statusCode": 200, "body": json.dumps({"path": answered})}

    stack.function("RefundApiFunction").override(remembers_its_request)
    paths = ["/refunds/first", "/refunds/second"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(
                lambda path: requests.get(f"{stack.api_url}{path}", headers={"x-api-key": KEY}, timeout=15),
                paths,
            )
        )
    assert [a.json() for a in answers] == [{"path": p} for p in paths]
    assert state["most"] == 1


def test_moto_step_functions_executes_a_task_on_a_stack_function(stack: EmbeddedStack) -> None:
    assert os.environ["MOTO_PORT"] == stack.aws_url.rsplit(":", 1)[1]
    assert default_user_config["stepfunctions"] == {"execute_state_machine": True}
    recorder = Recorder(status=200, body={"done": True})
    # moto's engine invokes as the template's state machine role, which may invoke RetryStepsFunction.
    steps = stack.function("RetryStepsFunction")
    steps.override(recorder)
    definition = {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": steps.arn, "End": True}},
    }
    sfn = stack.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="local-test",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/local-test",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"refund_id": "r1"}))
    deadline = time.monotonic() + 20
    while True:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["statusCode"] == 200
    [(event, _)] = recorder.calls
    assert event == {"refund_id": "r1"}


def test_moto_configuration_is_restored_after_the_stack() -> None:
    before = dict(default_user_config["stepfunctions"])
    with EmbeddedStack(port=0, sim_port=0, pump=False):
        assert default_user_config["stepfunctions"]["execute_state_machine"] is True
    assert default_user_config["stepfunctions"] == before
