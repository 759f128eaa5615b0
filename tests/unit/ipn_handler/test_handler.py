"""The thin handler: API Gateway event → raw body and headers → the service → the HTTP answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from amazon_pay_refunds.config import ConfigurationError
from amazon_pay_refunds.use_cases.notifications import Disposition, IpnOutcome
from functions.ipn_handler import app
from tests.support.ipn_signing import api_event


@dataclass
class FakeContext:
    function_name: str = "IpnHandler"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:IpnHandler"
    aws_request_id: str = "req-1"


@dataclass
class RecordingService:
    answer: IpnOutcome = field(
        default_factory=lambda: IpnOutcome(Disposition.ACCEPTED, "processed", "m-1", "PaymentRefund", "r-1")
    )
    calls: list[tuple[bytes | str, dict[str, str]]] = field(default_factory=list)

    def handle(self, body: bytes | str, headers: dict[str, str]) -> IpnOutcome:
        self.calls.append((body, dict(headers)))
        return self.answer


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> RecordingService:
    recording = RecordingService()
    monkeypatch.setattr(app, "ipn_service", lambda: recording)
    monkeypatch.setattr(app.metrics, "namespace", "AmazonPayRefunds")
    return recording


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.lambda_handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"])


BODY = '{\n  "Type" : "Notification",\n  "Message" : "caf\\u00e9 <\\/x> \u00e9"\n}'
HEADERS = {"X-Amz-Sns-Message-Type": "Notification", "x-amz-sns-message-id": "m-1"}


def test_the_raw_body_reaches_the_service_byte_exact(service: RecordingService) -> None:
    assert call(api_event(BODY, headers=HEADERS)) == (200, {"status": "accepted", "reason": "processed"})

    assert service.calls == [(BODY.encode("utf-8"), HEADERS)]


def test_a_base64_body_is_decoded_before_verification(service: RecordingService) -> None:
    call(api_event(BODY, headers=HEADERS, base64_body=True))

    assert service.calls[0][0] == BODY.encode("utf-8")


def test_a_body_that_is_not_base64_is_malformed_and_never_verified(service: RecordingService) -> None:
    event = api_event(BODY, headers=HEADERS)
    event["isBase64Encoded"] = True

    assert call(event) == (400, {"status": "rejected", "reason": "body_not_utf8"})
    assert service.calls == []


def test_an_sns_header_repeated_with_different_values_is_refused(service: RecordingService) -> None:
    event = api_event(BODY, headers=HEADERS)
    event["multiValueHeaders"]["X-Amz-Sns-Message-Type"] = ["Notification", "SubscriptionConfirmation"]

    assert call(event) == (403, {"status": "rejected", "reason": "header_mismatch"})
    assert service.calls == []


@pytest.mark.parametrize(
    ("disposition", "status"),
    [(Disposition.MALFORMED, 400), (Disposition.NOT_AUTHENTIC, 403), (Disposition.UNAVAILABLE, 503)],
)
def test_the_service_outcome_is_the_http_answer(
    service: RecordingService, disposition: Disposition, status: int
) -> None:
    service.answer = IpnOutcome(disposition, "some_reason", fields={"detail": "why"})

    assert call(api_event(BODY, headers=HEADERS)) == (status, {"status": "rejected", "reason": "some_reason"})


def test_a_configuration_error_answers_500_and_never_reaches_verification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def misconfigured() -> Any:
        raise ConfigurationError("a local SNS certificate authority is refused in AWS Lambda")

    monkeypatch.setattr(app, "ipn_service", misconfigured)
    monkeypatch.setattr(app.metrics, "namespace", "AmazonPayRefunds")

    assert call(api_event(BODY, headers=HEADERS)) == (
        500,
        {"status": "rejected", "reason": "configuration_error"},
    )


def test_an_unexpected_error_answers_500_so_that_sns_redelivers(service: RecordingService) -> None:
    def broken(body: Any, headers: Any) -> IpnOutcome:
        raise RuntimeError("bug")

    service.handle = broken  # type: ignore[method-assign]

    assert call(api_event(BODY, headers=HEADERS)) == (500, {"status": "rejected", "reason": "internal_error"})


def test_the_log_correlation_id_is_the_sns_message_id(
    service: RecordingService, caplog: pytest.LogCaptureFixture
) -> None:
    service.answer = IpnOutcome(
        Disposition.ACCEPTED, "processed", "verified-message-id", "PaymentRefund", "ord-1-r1"
    )

    call(api_event(BODY, headers=HEADERS))

    accepted = [r for r in caplog.records if r.getMessage() == "IPN accepted"]
    assert len(accepted) == 1
    assert app.logger.get_correlation_id() == "verified-message-id"
    assert vars(accepted[0])["reason"] == "processed"
