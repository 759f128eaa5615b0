from __future__ import annotations

import pickle

import pytest

from amazon_pay_refunds.adapters.mws.errors import AmazonPayError, is_retryable


@pytest.mark.parametrize(
    ("code", "http_status"),
    [("InternalServerError", 500), ("InternalError", 500), ("RequestThrottled", 503), ("QuotaExceeded", 503),
     ("ServiceUnavailable", 503), ("Whatever", 500), ("Whatever", 503), ("Whatever", 504),
     ("RequestTimeout", None), ("ConnectionError", None), ("MalformedResponse", None),
     ("MalformedResponse", 200), ("RequestThrottled", None)],
)  # fmt: skip
def test_server_side_and_transport_failures_are_retryable(code: str, http_status: int | None) -> None:
    assert is_retryable(code, http_status) is True
    assert AmazonPayError(code, "m", http_status=http_status).retryable is True


@pytest.mark.parametrize(
    ("code", "http_status"),
    [("InvalidParameterValue", 400), ("RequestThrottled", 400), ("InternalError", 403),
     ("MalformedResponse", 404), ("CaptureNotRefundable", 405), ("SignatureDoesNotMatch", 403),
     ("UnexpectedRedirect", 302), ("InvalidParameterValue", None)],
)  # fmt: skip
def test_client_errors_are_never_retryable(code: str, http_status: int | None) -> None:
    assert is_retryable(code, http_status) is False


def test_str_names_code_status_type_request_id_and_message() -> None:
    error = AmazonPayError(
        "CaptureNotRefundable", "not refundable", http_status=405, request_id="rid-1", error_type="Sender"
    )
    assert str(error) == "CaptureNotRefundable (HTTP 405, Sender, request id rid-1): not refundable"


def test_str_of_a_transport_failure_says_there_was_no_http_answer() -> None:
    assert str(AmazonPayError("RequestTimeout", "read timed out")) == (
        "RequestTimeout (no HTTP answer): read timed out"
    )


def test_repr_shows_every_attribute() -> None:
    error = AmazonPayError("RequestThrottled", "slow down", http_status=503, request_id="r", error_type="")
    assert repr(error) == (
        "AmazonPayError(code='RequestThrottled', http_status=503, request_id='r', error_type='', "
        "retryable=True, message='slow down')"
    )


def test_with_changes_keeps_everything_else() -> None:
    error = AmazonPayError("InternalError", "boom", http_status=500, request_id="r", error_type="Receiver")
    changed = error.with_changes(message="redacted")
    assert (changed.code, changed.message, changed.http_status, changed.request_id, changed.error_type) == (
        "InternalError",
        "redacted",
        500,
        "r",
        "Receiver",
    )
    assert changed.retryable is True


def test_an_error_survives_pickling() -> None:
    error = AmazonPayError("DuplicateRequest", "m", http_status=400, request_id="r", error_type="Sender")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own object)
    assert repr(copy) == repr(error)


def test_the_error_keeps_amazons_whole_text_for_the_client_to_redact_before_bounding_it() -> None:
    assert len(AmazonPayError("X", "y" * 10_000).message) == 10_000
