"""Every error's HTTP answer, from the one mapping (service.http_errors)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from amazon_pay_refunds.api.http_errors import error_response
from amazon_pay_refunds.use_cases.errors import (
    AmazonRefused,
    CaptureNotFound,
    CaptureNotRefundable,
    IdempotencyConflict,
    RefundNotFound,
    RefundServiceError,
    ReservationRefused,
    ServiceBusy,
    UnknownSeller,
)


def answer(error: Exception) -> tuple[int, dict[str, Any]]:
    response = error_response(error)
    body = response.body if isinstance(response.body, dict) else json.loads(str(response.body))
    return response.status_code, body


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (IdempotencyConflict("r1", "Pending"), 409, "IdempotencyConflict"),
        (RefundNotFound("r1"), 404, "RefundNotFound"),
        (CaptureNotFound("S01-1234567-1234567-C000001"), 404, "CaptureNotFound"),
        (UnknownSeller("A9"), 422, "UnknownSeller"),
        (
            CaptureNotRefundable("S01-1234567-1234567-C000001", "Closed", "AmazonClosed"),
            422,
            "CaptureNotRefundable",
        ),
        (ReservationRefused("RefundExceedsCapture", "too much", {}), 422, "RefundExceedsCapture"),
        (ReservationRefused("CurrencyMismatch", "EUR", {}), 422, "CurrencyMismatch"),
        (AmazonRefused("TransactionAmountExceeded", "over"), 422, "TransactionAmountExceeded"),
        (ServiceBusy(), 503, "ServiceBusy"),
    ],
)
def test_service_error_is_answered_with_its_status_and_code(
    error: RefundServiceError, status: int, code: str
) -> None:
    got_status, body = answer(error)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert set(body["error"]) == {"code", "message", "details"}


def test_unexpected_error_is_a_500_that_reveals_nothing() -> None:
    status, body = answer(KeyError("secret_key=abc123 at /var/task/app.py"))
    assert status == 500
    assert body["error"]["code"] == "InternalError"
    assert "abc123" not in json.dumps(body)


def test_malformed_json_is_a_400() -> None:
    error = RequestValidationError([{"type": "json_invalid", "loc": ("body", 1), "msg": "JSON decode error"}])
    assert answer(error)[0] == 400


def test_validation_error_is_a_422_naming_each_field() -> None:
    error = RequestValidationError(
        [
            {"type": "missing", "loc": ("body", "amount"), "msg": "Field required"},
            {
                "type": "string_type",
                "loc": ("body", "metadata", "k"),
                "msg": "Input should be a valid string",
            },
        ]
    )
    status, body = answer(error)
    assert (status, body["error"]["code"]) == (422, "ValidationError")
    assert [d["field"] for d in body["error"]["details"]] == ["amount", "metadata.k"]


def test_unknown_route_is_a_404_in_the_api_shape() -> None:
    status, body = answer(NotFoundError())
    assert (status, body["error"]["code"]) == (404, "NotFound")
