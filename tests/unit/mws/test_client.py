from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from amazon_pay_refunds.adapters.mws import signing
from amazon_pay_refunds.adapters.mws.client import AmazonPayClient, deadline_in
from amazon_pay_refunds.adapters.mws.credentials import (
    CredentialsBook,
    NoCredentialsForSeller,
    SellerCredentials,
)
from amazon_pay_refunds.adapters.mws.endpoints import Endpoint, endpoint_for
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import ProviderCreditReversal
from tests.support.http_fakes import Fail, FakeClock, FixedRandom, Reply, ScriptedAdapter, Sent

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
AUTH_TOKEN = "amzn.mws.4ea38b7b+f563/7709-TOKEN"
CREDENTIALS = SellerCredentials("A1SELLER", "AKIAEXAMPLE", SECRET_KEY, AUTH_TOKEN)
SANDBOX = endpoint_for("us", sandbox=True)
CAPTURE_ID = "S01-1234567-1234567-C000001"


def error_body(
    code: str, message: str = "nope", *, request_id_tag: str = "RequestId", type_: str = "Sender"
) -> bytes:
    return (
        '<ErrorResponse xmlns="http://mws.amazonservices.com/schema/OffAmazonPayments/2013-01-01">'
        f"<Error><Type>{type_}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<{request_id_tag}>rid-{code}</{request_id_tag}></ErrorResponse>"
    ).encode()


# ---------------------------------------------------------------------------------------------------
# Fakes: a clock that only moves when told, and a transport that plays a script


@dataclass
class Harness:
    client: AmazonPayClient
    adapter: ScriptedAdapter
    clock: FakeClock

    @property
    def sent(self) -> list[Sent]:
        return self.adapter.sent


@pytest.fixture
def refund_ok(fixtures_dir: Path) -> bytes:
    return (fixtures_dir / "mws" / "RefundResponse.xml").read_bytes()


def make(
    script: Sequence[Reply | Fail],
    *,
    credentials: SellerCredentials | Callable[[str | None], SellerCredentials] = CREDENTIALS,
    endpoint: Endpoint = SANDBOX,
    rng: float = 1.0,
    **options: Any,
) -> Harness:
    clock = FakeClock()
    adapter = ScriptedAdapter(clock, list(script))
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client = AmazonPayClient(
        credentials, endpoint, session=session, sleep=clock.sleep, monotonic=clock.monotonic,
        now=clock.now, rng=FixedRandom(rng), **options,
    )  # fmt: skip
    return Harness(client, adapter, clock)


def verify_signed(sent: Sent, secret_key: str = SECRET_KEY) -> dict[str, str]:
    form = sent.form
    host = sent.request.headers["Host"]
    path = urlsplit(sent.request.url or "").path
    assert signing.verify(secret_key, "POST", host, path, form, form["Signature"]), "bad signature"
    return form


# ---------------------------------------------------------------------------------------------------
# The Refund request on the wire


def test_full_refund_is_a_signed_form_post_with_amazons_parameter_names(refund_ok: bytes) -> None:
    h = make([Reply(200, refund_ok)])
    h.client.refund(CAPTURE_ID, "ord-1001_1", Decimal("100.00"), "USD")
    (sent,) = h.sent
    assert sent.request.method == "POST"
    assert sent.request.url == "https://mws.amazonservices.com/OffAmazonPayments_Sandbox/2013-01-01"
    assert sent.request.headers["Host"] == "mws.amazonservices.com"
    assert sent.request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    form = verify_signed(sent)
    assert {k: v for k, v in form.items() if k != "Signature"} == {
        "AWSAccessKeyId": "AKIAEXAMPLE",
        "Action": "Refund",
        "SellerId": "A1SELLER",
        "MWSAuthToken": AUTH_TOKEN,
        "SignatureMethod": "HmacSHA256",
        "SignatureVersion": "2",
        "Timestamp": "2026-03-01T12:00:00Z",
        "Version": "2013-01-01",
        "AmazonCaptureId": CAPTURE_ID,
        "RefundReferenceId": "ord-1001_1",
        "RefundAmount.Amount": "100.00",
        "RefundAmount.CurrencyCode": "USD",
    }


def test_partial_refund_sends_note_descriptor_and_provider_credit_reversals(refund_ok: bytes) -> None:
    h = make([Reply(200, refund_ok)])
    h.client.refund(
        CAPTURE_ID, "ord-1001_2", Decimal("12.5"), "EUR",
        seller_refund_note="Returned item: blue & green", soft_descriptor="Returns",
        provider_credit_reversals=[
            ProviderCreditReversal("PROVIDER1", Decimal("1.00"), "EUR"),
            ProviderCreditReversal("PROVIDER2", Decimal("0.25"), "EUR"),
        ],
    )  # fmt: skip
    form = verify_signed(h.sent[0])
    assert form["RefundAmount.Amount"] == "12.50"
    assert form["RefundAmount.CurrencyCode"] == "EUR"
    assert form["SellerRefundNote"] == "Returned item: blue & green"
    assert form["SoftDescriptor"] == "Returns"
    assert form["ProviderCreditReversalList.member.1.ProviderId"] == "PROVIDER1"
    assert form["ProviderCreditReversalList.member.1.CreditReversalAmount.Amount"] == "1.00"
    assert form["ProviderCreditReversalList.member.1.CreditReversalAmount.CurrencyCode"] == "EUR"
    assert form["ProviderCreditReversalList.member.2.ProviderId"] == "PROVIDER2"
    assert form["ProviderCreditReversalList.member.2.CreditReversalAmount.Amount"] == "0.25"
    assert form["ProviderCreditReversalList.member.2.CreditReversalAmount.CurrencyCode"] == "EUR"


def test_the_body_is_rfc3986_encoded_like_the_string_to_sign(refund_ok: bytes) -> None:
    h = make([Reply(200, refund_ok)])
    h.client.refund(CAPTURE_ID, "r_1", Decimal("1.00"), "USD", seller_refund_note="a b+c")
    body = h.sent[0].request.body
    assert isinstance(body, bytes)
    assert b"SellerRefundNote=a%20b%2Bc" in body


def test_jpy_amounts_are_sent_without_decimals(refund_ok: bytes) -> None:
    h = make([Reply(200, refund_ok)])
    h.client.refund(CAPTURE_ID, "r_1", Decimal("8400"), "JPY")
    assert h.sent[0].form["RefundAmount.Amount"] == "8400"


def test_refund_returns_amazons_refund_details(refund_ok: bytes) -> None:
    details = make([Reply(200, refund_ok)]).client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert details.amazon_refund_id == "S01-5695290-1354077-R072290"
    assert details.refund_status.state == "Pending"
    assert details.request_id == "2be495ee-0a86-4357-a6a5-5f0af88398d9"


def test_no_auth_token_parameter_without_a_token(refund_ok: bytes) -> None:
    h = make([Reply(200, refund_ok)], credentials=SellerCredentials("A1SELLER", "AK", "sk"))
    h.client.refund(CAPTURE_ID, "r_1", Decimal("1.00"), "USD")
    assert "MWSAuthToken" not in verify_signed(h.sent[0], "sk")


def test_a_per_call_seller_is_signed_with_that_sellers_credentials(refund_ok: bytes) -> None:
    book = CredentialsBook(
        "A1SELLER", {"A1SELLER": CREDENTIALS, "B2SELLER": SellerCredentials("B2SELLER", "AK2", "sk2")}
    )
    h = make([Reply(200, refund_ok), Reply(200, refund_ok)], credentials=book.for_seller)
    h.client.refund(CAPTURE_ID, "r_1", Decimal("1.00"), "USD", seller_id="B2SELLER")
    h.client.refund(CAPTURE_ID, "r_2", Decimal("1.00"), "USD")
    first, second = verify_signed(h.sent[0], "sk2"), verify_signed(h.sent[1])
    assert (first["SellerId"], first["AWSAccessKeyId"]) == ("B2SELLER", "AK2")
    assert (second["SellerId"], second["AWSAccessKeyId"]) == ("A1SELLER", "AKIAEXAMPLE")


def test_an_unknown_seller_fails_before_any_request() -> None:
    h = make([])
    with pytest.raises(NoCredentialsForSeller):
        h.client.refund(CAPTURE_ID, "r_1", Decimal("1.00"), "USD", seller_id="Z9OTHER")
    assert h.sent == []


def test_a_default_https_port_is_left_out_of_the_signed_host(refund_ok: bytes) -> None:
    endpoint = Endpoint("https", "MWS.AmazonServices.com:443", "/OffAmazonPayments_Sandbox/2013-01-01")
    h = make([Reply(200, refund_ok)], endpoint=endpoint)
    h.client.refund(CAPTURE_ID, "r_1", Decimal("1.00"), "USD")
    assert h.sent[0].request.headers["Host"] == "mws.amazonservices.com"
    verify_signed(h.sent[0])


# ---------------------------------------------------------------------------------------------------
# The other operations


def test_get_refund_details_sends_the_refund_id(fixtures_dir: Path) -> None:
    h = make([Reply(200, (fixtures_dir / "mws" / "GetRefundDetails.xml").read_bytes())])
    details = h.client.get_refund_details("S01-5695290-1354077-R072290")
    form = verify_signed(h.sent[0])
    assert (form["Action"], form["AmazonRefundId"]) == ("GetRefundDetails", "S01-5695290-1354077-R072290")
    assert details.refund_status.state == "Completed"


def test_get_capture_details_sends_the_capture_id(fixtures_dir: Path) -> None:
    h = make([Reply(200, (fixtures_dir / "mws" / "GetCaptureDetailsResponse.xml").read_bytes())])
    details = h.client.get_capture_details("S01-9821095-1837200-C041953")
    form = verify_signed(h.sent[0])
    assert (form["Action"], form["AmazonCaptureId"]) == ("GetCaptureDetails", "S01-9821095-1837200-C041953")
    assert details.capture_status.state == "Completed"


def test_get_service_status_sends_only_the_common_parameters(fixtures_dir: Path) -> None:
    h = make([Reply(200, (fixtures_dir / "mws" / "GetServiceStatusResponseGreen.xml").read_bytes())])
    status = h.client.get_service_status()
    form = verify_signed(h.sent[0])
    assert form["Action"] == "GetServiceStatus"
    assert set(form) == {"AWSAccessKeyId", "Action", "SellerId", "SignatureMethod", "SignatureVersion",
                         "Timestamp", "Version", "MWSAuthToken", "Signature"}  # fmt: skip
    assert status.status == "GREEN"


# ---------------------------------------------------------------------------------------------------
# Retries


@pytest.mark.parametrize(
    "first",
    [Reply(503, error_body("RequestThrottled")), Reply(500, error_body("InternalServerError")),
     Reply(503, b""),  Fail(requests.ReadTimeout("read timed out")), Fail(requests.ConnectTimeout("connect")),
     Fail(requests.ConnectionError("refused")), Reply(200, b"<RefundResponse><trunc")],
    ids=["503-throttled", "500", "503-no-body", "read-timeout", "connect-timeout", "connection-error",
         "truncated-200"],
)  # fmt: skip
def test_a_transient_failure_is_retried_and_the_retry_succeeds(first: Reply | Fail, refund_ok: bytes) -> None:
    h = make([first, Reply(200, refund_ok)])
    details = h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert details.amazon_refund_id == "S01-5695290-1354077-R072290"
    assert len(h.sent) == 2


def test_every_retry_is_signed_afresh_with_a_new_timestamp(refund_ok: bytes) -> None:
    h = make([Reply(503, error_body("ServiceUnavailable")), Reply(500, error_body("InternalError")),
              Reply(200, refund_ok)], base_delay=2.0)  # fmt: skip
    h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    forms = [verify_signed(sent) for sent in h.sent]
    assert [form["Timestamp"] for form in forms] == [
        "2026-03-01T12:00:00Z", "2026-03-01T12:00:02Z", "2026-03-01T12:00:06Z"
    ]  # fmt: skip
    assert len({form["Signature"] for form in forms}) == 3
    assert {form["RefundReferenceId"] for form in forms} == {"r_1"}


def test_sleeps_double_from_the_base_delay_up_to_the_cap(refund_ok: bytes) -> None:
    h = make([Reply(503, error_body("RequestThrottled"))] * 5 + [Reply(200, refund_ok)],
             max_attempts=6, base_delay=1.0, max_delay=10.0, rng=1.0)  # fmt: skip
    h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert h.clock.sleeps == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_sleeps_are_fully_jittered_below_the_backoff_ceiling(refund_ok: bytes) -> None:
    h = make([Reply(503, b"")] * 3 + [Reply(200, refund_ok)], base_delay=1.0, rng=0.25)
    h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert h.clock.sleeps == [0.25, 0.5, 1.0]


def test_after_max_attempts_the_last_error_is_raised() -> None:
    h = make([Reply(503, error_body("RequestThrottled")), Reply(500, error_body("InternalError"))],
             max_attempts=2)  # fmt: skip
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == (
        "InternalError",
        500,
        True,
    )
    assert len(h.sent) == 2
    assert len(h.clock.sleeps) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "InvalidParameterValue"), (401, "AccessDenied"), (403, "SignatureDoesNotMatch"),
     (405, "CaptureNotRefundable"), (400, "RequestThrottled")],
)  # fmt: skip
def test_a_4xx_is_never_retried(status: int, code: str) -> None:
    h = make([Reply(status, error_body(code))])
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert caught.value.retryable is False
    assert len(h.sent) == 1
    assert h.clock.sleeps == []


def test_a_redirect_is_neither_followed_nor_retried() -> None:
    h = make([Reply(302, b"", {"Location": "https://attacker.example/steal"})])
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == (
        "UnexpectedRedirect", 302, False
    )  # fmt: skip
    assert len(h.sent) == 1


# ---------------------------------------------------------------------------------------------------
# Deadline


def test_request_timeouts_are_shrunk_to_fit_the_deadline(refund_ok: bytes) -> None:
    h = make([Reply(200, refund_ok)], timeout=(3.0, 9.0))
    h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD", deadline=h.clock.t + 6.0)
    connect, read = h.sent[0].timeout
    assert connect + read == pytest.approx(6.0)
    assert (connect, read) == pytest.approx((1.5, 4.5))


def test_request_timeouts_are_unchanged_when_the_deadline_is_far(refund_ok: bytes) -> None:
    h = make([Reply(200, refund_ok)], timeout=(3.0, 9.0))
    h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD", deadline=h.clock.t + 60.0)
    assert h.sent[0].timeout == (3.0, 9.0)


def test_no_sleep_reaches_past_the_deadline_and_the_last_retryable_error_is_raised() -> None:
    h = make([Reply(503, error_body("RequestThrottled")), Reply(503, error_body("ServiceUnavailable"))],
             base_delay=4.0, rng=1.0)  # fmt: skip
    deadline = h.clock.t + 4.0
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD", deadline=deadline)
    assert caught.value.code == "RequestThrottled"
    assert len(h.sent) == 1
    assert h.clock.sleeps == []
    assert h.clock.t <= deadline


def test_a_deadline_already_passed_sends_nothing() -> None:
    h = make([])
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD", deadline=h.clock.t - 1)
    assert (caught.value.code, caught.value.retryable) == ("RequestTimeout", True)
    assert h.sent == []


@settings(max_examples=200, deadline=None)
@given(
    budget=st.floats(min_value=0.0, max_value=60.0),
    jitter=st.floats(min_value=0.0, max_value=0.999),
    connect=st.floats(min_value=0.1, max_value=10.0),
    read=st.floats(min_value=0.1, max_value=30.0),
)
def test_repeated_timeouts_never_run_past_the_deadline(
    budget: float, jitter: float, connect: float, read: float
) -> None:
    script: list[Reply | Fail] = [Fail(requests.ReadTimeout("slow"), takes_read_timeout=True)] * 10
    h = make(script, rng=jitter, timeout=(connect, read), max_attempts=10, base_delay=1.0, max_delay=8.0)
    deadline = h.clock.t + budget
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD", deadline=deadline)
    assert caught.value.code == "RequestTimeout"
    assert h.clock.t <= deadline + 1e-9
    for sent in h.sent:
        assert sent.at + sent.timeout[0] + sent.timeout[1] <= deadline + 1e-9


def test_deadline_in_is_relative_to_the_monotonic_clock() -> None:
    assert deadline_in(12.5, monotonic=lambda: 100.0) == 112.5


# ---------------------------------------------------------------------------------------------------
# Amazon's error codes as AmazonPayError values


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [("InvalidParameterValue", 400, False), ("DuplicateRequest", 400, False),
     ("DuplicateReferenceId", 400, False), ("CurrencyMismatch", 400, False),
     ("TransactionAmountExceeded", 400, False), ("TransactionCountExceeded", 400, False),
     ("CaptureNotRefundable", 405, False), ("InvalidSandboxSimulationSpecified", 400, False),
     ("AccessDenied", 401, False), ("InvalidAccessKeyId", 403, False), ("SignatureDoesNotMatch", 403, False),
     ("InternalServerError", 500, True), ("InternalError", 500, True), ("RequestThrottled", 503, True),
     ("QuotaExceeded", 503, True), ("ServiceUnavailable", 503, True)],
)  # fmt: skip
def test_each_documented_error_code_surfaces_with_its_status_and_retryability(
    code: str, status: int, retryable: bool
) -> None:
    h = make([Reply(status, error_body(code, "what Amazon said"))], max_attempts=1)
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    error = caught.value
    assert (error.code, error.http_status, error.retryable) == (code, status, retryable)
    assert error.message == "what Amazon said"
    assert error.error_type == "Sender"


@pytest.mark.parametrize("tag", ["RequestId", "RequestID"])
def test_the_request_id_is_read_in_either_spelling(tag: str) -> None:
    h = make([Reply(400, error_body("DuplicateRequest", request_id_tag=tag))])
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert caught.value.request_id == "rid-DuplicateRequest"


def test_the_request_id_header_is_used_when_the_body_has_none() -> None:
    h = make([Reply(403, b"<html>Forbidden</html>", {"x-mws-request-id": "hdr-1"})])
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert (caught.value.code, caught.value.request_id, caught.value.retryable) == (
        "MalformedResponse", "hdr-1", False
    )  # fmt: skip


def test_an_unreadable_success_body_is_a_retryable_malformed_response() -> None:
    h = make([Reply(200, b"<html>maintenance</html>")], max_attempts=1)
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == (
        "MalformedResponse", 200, True
    )  # fmt: skip


@pytest.mark.parametrize(
    ("error", "code"),
    [(requests.ReadTimeout("x"), "RequestTimeout"), (requests.ConnectTimeout("x"), "RequestTimeout"),
     (requests.ConnectionError("x"), "ConnectionError"), (requests.exceptions.ChunkedEncodingError("x"),
                                                           "ConnectionError")],
)  # fmt: skip
def test_transport_failures_have_no_http_status_and_are_retryable(error: Exception, code: str) -> None:
    h = make([Fail(error)], max_attempts=1)
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == (code, None, True)


# ---------------------------------------------------------------------------------------------------
# Arguments refused before any call


@pytest.mark.parametrize(
    "overrides",
    [{"refund_reference_id": "x" * 33}, {"refund_reference_id": "has space"}, {"refund_reference_id": "a.b"},
     {"refund_reference_id": ""}, {"refund_reference_id": "ü"}, {"seller_refund_note": "n" * 256},
     {"soft_descriptor": "s" * 17}, {"amount": Decimal("0")}, {"amount": Decimal("-1.00")},
     {"amount": Decimal("1.005")}, {"amount": Decimal("NaN")}, {"amount": 1.5},
     {"amount": Decimal("10.5"), "currency_code": "JPY"}, {"currency_code": "XXX"},
     {"amazon_capture_id": ""}, {"amazon_capture_id": " C1"},
     {"provider_credit_reversals": [ProviderCreditReversal("P", Decimal("0.001"), "USD")]},
     {"provider_credit_reversals": [ProviderCreditReversal("", Decimal("1"), "USD")]}],
)  # fmt: skip
def test_obviously_bad_refund_arguments_raise_value_error_before_any_call(overrides: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"amazon_capture_id": CAPTURE_ID, "refund_reference_id": "r_1",
                                 "amount": Decimal("1.00"), "currency_code": "USD"}  # fmt: skip
    arguments.update(overrides)
    h = make([])
    with pytest.raises(ValueError):
        h.client.refund(**arguments)
    assert h.sent == []


def test_limits_themselves_are_accepted(refund_ok: bytes) -> None:
    h = make([Reply(200, refund_ok)])
    h.client.refund(CAPTURE_ID, "A" * 30 + "-_", Decimal("1.00"), "USD",
                    seller_refund_note="n" * 255, soft_descriptor="s" * 16)  # fmt: skip
    assert len(h.sent) == 1


# ---------------------------------------------------------------------------------------------------
# Logs and secrets


def test_each_attempt_is_logged_with_action_seller_status_request_id_and_attempt(
    refund_ok: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = make([Reply(503, error_body("RequestThrottled", request_id_tag="RequestID")), Reply(200, refund_ok)])
    h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    records = [r for r in caplog.records if r.name == "amazon_pay_refunds.adapters.mws.client"]
    assert [(r.amazon_pay_action, r.seller_id, r.attempt, r.http_status, r.request_id) for r in records] == [  # type: ignore[attr-defined]
        ("Refund", "A1SELLER", 1, 503, "rid-RequestThrottled"),
        ("Refund", "A1SELLER", 2, 200, "2be495ee-0a86-4357-a6a5-5f0af88398d9"),
    ]
    assert "attempt=1" in records[0].getMessage()
    assert "RequestThrottled" in records[0].getMessage()


def _echoing_error(sent_body: bytes) -> bytes:
    """A verbose server (or proxy) whose error message echoes the request and the secret key."""
    return error_body("InvalidParameterValue", f"bad request {sent_body.decode()} key={SECRET_KEY}")


class EchoAdapter(ScriptedAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        assert isinstance(request.body, bytes)
        self.script = [Reply(400, _echoing_error(request.body).replace(b"&", b"&amp;"))]
        return super().send(request, *args, **kwargs)


def test_secrets_never_reach_logs_exception_strings_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    adapter = EchoAdapter(clock, [])
    session = requests.Session()
    session.mount("https://", adapter)
    client = AmazonPayClient(CREDENTIALS, SANDBOX, session=session, sleep=clock.sleep,
                             monotonic=clock.monotonic, now=clock.now)  # fmt: skip
    with pytest.raises(AmazonPayError) as caught:
        client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    signature = adapter.sent[0].form["Signature"]
    assert "bad request" in caught.value.message, "the test server did not echo the request"
    texts = [str(caught.value), repr(caught.value), caught.value.message, caplog.text, repr(client)]
    for secret in (SECRET_KEY, AUTH_TOKEN, signature, signing.percent_encode(AUTH_TOKEN),
                   signing.percent_encode(signature)):  # fmt: skip
        for text in texts:
            assert secret not in text


@pytest.mark.parametrize("offset", [-30, -10, -1, 0, 1, 10])
def test_a_secret_across_the_message_limit_is_redacted_before_the_message_is_cut(offset: int) -> None:
    """The cut at 1,000 characters must not leave a part of a secret that redaction no longer recognises."""
    for secret in (SECRET_KEY, AUTH_TOKEN):
        message = "x" * (1000 + offset - len(secret) // 2) + secret + "y" * 40
        h = make([Reply(400, error_body("InvalidParameterValue", message))])
        with pytest.raises(AmazonPayError) as caught:
            h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
        shown = caught.value.message
        assert len(shown) <= 1000
        half = len(secret) // 2
        assert secret[:half] not in shown and secret[half:] not in shown
        assert secret[:8] not in shown and secret[-8:] not in shown


def test_a_long_error_message_is_bounded_to_1000_characters() -> None:
    h = make([Reply(400, error_body("InvalidParameterValue", "y" * 10_000))])
    with pytest.raises(AmazonPayError) as caught:
        h.client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert caught.value.message == "y" * 1000


@pytest.mark.parametrize("reference", ["ord-1_1\n", "ord-1_1\r\n"])
def test_a_refund_reference_id_with_a_trailing_newline_is_refused_before_any_call(reference: str) -> None:
    h = make([])
    with pytest.raises(ValueError, match="refund_reference_id"):
        h.client.refund(CAPTURE_ID, reference, Decimal("1.00"), "USD")
    assert h.sent == []
