"""The RefundApi handler in process: moto's DynamoDB and Secrets Manager, the simulator on 127.0.0.1."""

from __future__ import annotations

import contextlib
import importlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from amazon_pay_refunds import runtime
from amazon_pay_refunds.adapters.dynamodb import RefundStore, create_table
from amazon_pay_sim import Simulator
from amazon_pay_sim.server import ServerHandle
from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_SELLER_ID
from refunds_local.iam import SESSION as IAM_SESSION
from refunds_local.iam import IamGate, Principal, as_principal, enforced_in_process, template_gate
from tests.support.paths import REPO

EVENT_TEMPLATE = REPO / "events" / "refund_api" / "post_refunds.json"
TABLE = "refunds-api-test"
SECRET_NAME = "amazon-pay-refunds/amazon-pay-credentials-1234567db123"
MWS_AUTH_TOKEN = "amzn.mws.token-that-must-never-leak-0000"
SELLER_ID = DEFAULT_SELLER_ID
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LambdaContext:
    """What Powertools and the handler read from Lambda's context."""

    remaining_seconds: float = 25.0
    function_name: str = "RefundApiFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:RefundApiFunction"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def error_code(self) -> str:
        return str(self.body["error"]["code"])


def api_event(
    method: str, resource: str, path: str, body: Any = None, *, raw_body: str | None = None
) -> dict[str, Any]:
    """An API Gateway REST proxy event, shaped like events/refund_api/*.json."""
    event: dict[str, Any] = json.loads(EVENT_TEMPLATE.read_text())
    names = [part[1:-1] for part in resource.split("/") if part.startswith("{")]
    values = [part for r, part in zip(resource.split("/"), path.split("/"), strict=True) if r.startswith("{")]
    event.update(
        httpMethod=method,
        resource=resource,
        path=path,
        pathParameters=dict(zip(names, values, strict=True)) or None,
        body=raw_body if raw_body is not None else (None if body is None else json.dumps(body)),
    )
    event["requestContext"].update(
        httpMethod=method, resourcePath=resource, path=f"/v1{path}", requestId=str(uuid.uuid4())
    )
    return event


class Api:
    """Calls lambda_handler as API Gateway would, and reads the answers; with RefundApiFunction's role when
    given its principal (refunds_local/iam.py)."""

    def __init__(self, handler: Handler | None = None, principal: Principal | None = None) -> None:
        # Imported only now, inside the environment the stack sets (as Lambda imports a handler).
        self.handler = handler or importlib.import_module("functions.refund_api.app").lambda_handler
        self.remaining_seconds = 25.0
        self.principal = principal

    def call(self, method: str, resource: str, path: str, body: Any = None, **kw: Any) -> Answer:
        with as_principal(self.principal) if self.principal is not None else contextlib.nullcontext():
            response = self.handler(
                api_event(method, resource, path, body, **kw), LambdaContext(self.remaining_seconds)
            )
        return Answer(response["statusCode"], json.loads(response["body"]) if response.get("body") else None)

    def post_refund(self, body: dict[str, Any]) -> Answer:
        return self.call("POST", "/refunds", "/refunds", body)

    def get_refund(self, refund_id: str) -> Answer:
        return self.call("GET", "/refunds/{refund_id}", f"/refunds/{refund_id}")

    def get_capture(self, capture_id: str) -> Answer:
        return self.call("GET", "/captures/{amazon_capture_id}", f"/captures/{capture_id}")

    def resolve(self, refund_id: str, body: dict[str, Any]) -> Answer:
        return self.call("POST", "/refunds/{refund_id}/resolve", f"/refunds/{refund_id}/resolve", body)


def refund_body(
    capture_id: str, refund_id: str = "ord-1001-r1", amount: str = "12.50", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "refund_id": refund_id,
        "amazon_capture_id": capture_id,
        "amount": amount,
        "currency_code": "USD",
        "seller_refund_note": "Returned item",
        "soft_descriptor": "Returns",
        "metadata": {"order_id": "1001"},
    }
    body.update(extra)
    return body


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(settle_seconds=3600, throttling=False, fault_hold_seconds=5)


@pytest.fixture
def served(simulator: Simulator) -> Iterator[ServerHandle]:
    handle = simulator.serve(host="127.0.0.1", port=0)
    try:
        yield handle
    finally:
        handle.shutdown()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, served: ServerHandle) -> Iterator[None]:
    """moto's DynamoDB table and credentials secret, and the environment the stack would set."""
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV", "ALLOW_AMAZON_OVER_REFUND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REFUNDS_TABLE", TABLE)
    monkeypatch.setenv("AMAZON_PAY_CREDENTIALS_SECRET", SECRET_NAME)
    monkeypatch.setenv("AMAZON_PAY_REGION", "us")
    monkeypatch.setenv("REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT", served.mws_url)
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="us-east-1"), TABLE)
        secret = {
            "default_seller_id": SELLER_ID,
            "sellers": {
                SELLER_ID: {
                    "access_key": DEFAULT_ACCESS_KEY,
                    "secret_key": DEFAULT_SECRET_KEY,
                    "mws_auth_token": MWS_AUTH_TOKEN,
                }
            },
        }
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=SECRET_NAME, SecretString=json.dumps(secret)
        )
        runtime.reset()
        try:
            yield
        finally:
            runtime.reset()


@pytest.fixture
def iam_gate(aws: None) -> Iterator[IamGate]:
    """The roles SAM generates for the functions these tests run, enforced on their calls (iam.py)."""
    secret_arn = boto3.client("secretsmanager", region_name="us-east-1").describe_secret(SecretId=SECRET_NAME)
    gate = template_gate(
        ["RefundApiFunction", "ReconcilerFunction"],
        {
            "RefundsTable": TABLE,
            "RefundsTable.Arn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}",
            "CredentialsSecret": secret_arn["ARN"],
        },
        secrets={SECRET_NAME: secret_arn["ARN"]},
    )
    with enforced_in_process(gate):
        runtime.reset()
        yield gate
    runtime.reset()
    IAM_SESSION.add(gate)


@pytest.fixture
def api(iam_gate: IamGate) -> Api:
    return Api(principal=iam_gate.principal("RefundApiFunction"))


@pytest.fixture
def store(aws: None) -> RefundStore:
    return RefundStore(TABLE, boto3.client("dynamodb", region_name="us-east-1"))


@pytest.fixture
def capture(simulator: Simulator) -> Callable[..., str]:
    def make(amount: str = "100.00", currency_code: str = "USD", state: str = "Completed") -> str:
        return simulator.create_capture(amount, currency_code, state=state)

    return make


def refund_calls(simulator: Simulator) -> list[dict[str, Any]]:
    return [call for call in simulator.calls() if call["action"] == "Refund"]
