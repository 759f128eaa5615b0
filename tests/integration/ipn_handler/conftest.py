"""The IPN handler in process, on a moto-emulated refunds table, with injected certificate/URL fetchers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from amazon_pay_refunds import runtime
from amazon_pay_refunds.adapters.dynamodb import RefundStore, create_table
from amazon_pay_refunds.adapters.sns import CertificateFetcher
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import request_refund
from amazon_pay_refunds.core.models import Refund, request_fingerprint
from amazon_pay_refunds.ports import AmazonPayReader
from amazon_pay_refunds.use_cases.notifications import IpnService
from functions.ipn_handler import app
from refunds_local.iam import SESSION as IAM_SESSION
from refunds_local.iam import IamGate, Principal, as_principal, enforced_in_process, template_gate
from tests.support.ipn_signing import NOW, OTHER_SELLER, SELLER

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "refunds-ipn"
# The container's cached builder, kept here: tests replace `app.ipn_service` with their own service.
BUILD_SERVICE = app.ipn_service
CAPTURE_ID = "S01-1234567-1234567-C000001"


@dataclass
class FakeContext:
    function_name: str = "IpnHandler"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:IpnHandler"
    aws_request_id: str = "req-1"


@dataclass
class SubscribeSpy:
    """Records every SubscribeURL the service asked to fetch."""

    urls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> None:
        self.urls.append(url)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.body["reason"])


class Endpoint:
    """POST /ipn through `app.lambda_handler`, with the service built as in Lambda plus test injections,
    and IpnHandlerFunction's role (refunds_local/iam.py)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, principal: Principal) -> None:
        self._monkeypatch = monkeypatch
        self.subscribe = SubscribeSpy()
        self.principal = principal

    def install(
        self,
        fetcher: CertificateFetcher,
        *,
        clock: Callable[[], datetime] = lambda: NOW,
        amazon_pay: AmazonPayReader | None = None,
    ) -> None:
        """Build the container's service from the environment now, with these injections."""
        runtime.reset()
        BUILD_SERVICE.cache_clear()
        service = lambda_services(now=clock).ipn_service(
            certificate_fetcher=fetcher,
            subscribe_url_fetcher=self.subscribe,
            amazon_pay=(lambda: amazon_pay) if amazon_pay is not None else None,
        )
        self.install_service(service)

    def install_service(self, service: IpnService) -> None:
        self._monkeypatch.setattr(app, "ipn_service", lambda: service)

    def post(self, event: dict[str, Any]) -> Answer:
        with as_principal(self.principal):
            response = app.lambda_handler(event, FakeContext())
        assert response["headers"]["Content-Type"] == "application/json"
        return Answer(response["statusCode"], json.loads(response["body"]))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_EXECUTION_ENV",
        "REFUNDS_LOCAL_SNS_CA_PEM",
        "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX",
        "REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT",
        "IPN_TOPIC_ARNS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REFUNDS_TABLE", TABLE)
    monkeypatch.setenv("AMAZON_PAY_CREDENTIALS_SECRET", "amazon-pay/credentials")
    monkeypatch.setenv("SELLER_IDS", f"{SELLER},{OTHER_SELLER}")
    monkeypatch.setenv("AMAZON_PAY_SANDBOX", "true")
    monkeypatch.setenv("MAX_PROCESSING_FAILURE_RETRIES", "1")
    # The handler module was imported before the test environment existed; Lambda sets it before import.
    monkeypatch.setattr(app.metrics, "namespace", "AmazonPayRefunds")
    with mock_aws():
        runtime.reset()
        BUILD_SERVICE.cache_clear()
        yield
    runtime.reset()
    BUILD_SERVICE.cache_clear()


@pytest.fixture
def dynamodb(aws: None) -> DynamoDBClient:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_table(client, TABLE)
    return client


@pytest.fixture
def store(dynamodb: DynamoDBClient) -> RefundStore:
    return RefundStore(TABLE, dynamodb)


@pytest.fixture
def iam_gate(dynamodb: DynamoDBClient) -> Iterator[IamGate]:
    """IpnHandlerFunction's role as SAM generates it, enforced on its calls (iam.py)."""
    table_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"
    gate = template_gate(["IpnHandlerFunction"], {"RefundsTable": TABLE, "RefundsTable.Arn": table_arn})
    with enforced_in_process(gate):
        runtime.reset()
        BUILD_SERVICE.cache_clear()
        yield gate
    IAM_SESSION.add(gate)


@pytest.fixture
def endpoint(iam_gate: IamGate, monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    return Endpoint(monkeypatch, iam_gate.principal("IpnHandlerFunction"))


def create_refund(
    store: RefundStore,
    refund_id: str = "ord-1001-r1",
    *,
    amount: str = "12.50",
    currency_code: str = "USD",
    capture_id: str = CAPTURE_ID,
    captured: str = "100.00",
    seller_id: str = SELLER,
) -> Refund:
    """A refund as POST /refunds stores it: Requested, attempt 1 prepared, amount reserved on the ledger."""
    transition = request_refund(
        refund_id=refund_id,
        seller_id=seller_id,
        amazon_capture_id=capture_id,
        amount=Decimal(amount),
        currency_code=currency_code,
        seller_refund_note="Returned item",
        soft_descriptor="Returns",
        metadata={},
        request_fingerprint=request_fingerprint({"refund_id": refund_id}),
        at=NOW,
    )
    seed = LedgerSeed(capture_id, seller_id, currency_code, Decimal(captured))
    return store.create_refund_with_reservation(transition.refund, seed)


def table_items(dynamodb: DynamoDBClient) -> list[dict[str, Any]]:
    return list(dynamodb.scan(TableName=TABLE)["Items"])
