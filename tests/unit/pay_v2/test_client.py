"""PayV2Client on the wire: signed requests, typed answers in Decimal, typed errors, retries in a deadline."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from amazon_pay_refunds.adapters.mws.credentials import NoCredentialsForSeller, PayV2Credentials
from amazon_pay_refunds.adapters.pay_v2 import errors, signing
from amazon_pay_refunds.adapters.pay_v2.client import PayV2Client
from amazon_pay_refunds.adapters.pay_v2.endpoints import PayV2Endpoint, endpoint_for
from amazon_pay_refunds.adapters.pay_v2.models import DECLINED, REFUND_INITIATED, REFUNDED
from amazon_pay_refunds.deadlines import deadline_in
from tests.support.http_fakes import Fail, FakeClock, FixedRandom, Reply, ScriptedAdapter, Sent
from tests.support.pay_v2_keys import private_key, private_pem

CREDENTIALS = PayV2Credentials("A1SELLER", "SANDBOX-AHEXAMPLEKEYID", private_pem())
CHARGE_ID = "S01-5105180-3221187-C056351"
REFUND_ID = "S01-5105180-3221187-R022311"


@dataclass
class Harness:
    client: PayV2Client
    adapter: ScriptedAdapter
    clock: FakeClock

    @property
    def sent(self) -> list[Sent]:
        return self.adapter.sent


def make(
    script: Sequence[Reply | Fail],
    *,
    credentials: PayV2Credentials = CREDENTIALS,
    endpoint: PayV2Endpoint | None = None,
    rng: float = 1.0,
    **options: Any,
) -> Harness:
    clock = FakeClock()
    adapter = ScriptedAdapter(clock, list(script))
    session = requests.Session()
    session.mount("https://", adapter)
    client = PayV2Client(
        credentials, endpoint or endpoint_for("eu"), session=session, sleep=clock.sleep,
        monotonic=clock.monotonic, now=clock.now, rng=FixedRandom(rng), **options,
    )  # fmt: skip
    return Harness(client, adapter, clock)


def refund_json(state: str = REFUND_INITIATED, reason: str | None = None, amount: Any = "14.00") -> bytes:
    return json.dumps({
        "refundId": REFUND_ID, "chargeId": CHARGE_ID,
        "refundAmount": {"amount": amount, "currencyCode": "EUR"},
        "softDescriptor": "AMZ* Shop", "creationTimestamp": "20190714T155300Z",
        "statusDetails": {"state": state, "reasonCode": reason, "reasonDescription": None,
                          "lastUpdatedTimestamp": "20190714T155300Z"},
        "releaseEnvironment": "Sandbox",
    }).encode()  # fmt: skip


def error_json(code: str, message: str = "nope") -> bytes:
    return json.dumps({"reasonCode": code, "message": message}).encode()


def verify_signed(sent: Sent, key_name: str = "merchant") -> signing.Authorization:
    """Verify the request as a server would: from its SignedHeaders list only."""
    headers = {name.lower(): value for name, value in sent.request.headers.items()}
    auth = signing.parse_authorization(headers["authorization"])
    body = sent.request.body or b""
    assert isinstance(body, bytes)
    path = urlsplit(sent.request.url or "").path
    canonical = signing.canonical_request(
        sent.request.method or "", path, None, headers, auth.signed_headers, body
    )
    text = signing.string_to_sign(auth.algorithm, canonical)
    assert signing.verify(private_key(key_name).public_key(), auth.algorithm, text, auth.signature)
    return auth


# -- requests ----------------------------------------------------------------------------------------


def test_create_refund_sends_a_signed_json_body_with_the_idempotency_key() -> None:
    h = make([Reply(201, refund_json(), {"x-amz-pay-request-id": "rid-1"})])
    refund = h.client.create_refund(CHARGE_ID, Decimal("14.00"), "EUR", idempotency_key="ord-1-r1_a1")
    (sent,) = h.sent
    assert sent.request.method == "POST"
    assert sent.request.url == "https://pay-api.amazon.eu/v2/refunds"
    assert json.loads(sent.request.body or b"") == {
        "chargeId": CHARGE_ID,
        "refundAmount": {"amount": "14.00", "currencyCode": "EUR"},
    }
    auth = verify_signed(sent)
    assert auth.algorithm == signing.ALGORITHM_V2
    assert auth.public_key_id == "SANDBOX-AHEXAMPLEKEYID"
    assert {"x-amz-pay-date", "x-amz-pay-host", "x-amz-pay-idempotency-key", "x-amz-pay-region"} <= set(
        auth.signed_headers
    )
    assert sent.request.headers["x-amz-pay-idempotency-key"] == "ord-1-r1_a1"
    assert sent.request.headers["x-amz-pay-host"] == "pay-api.amazon.eu"
    assert sent.request.headers["x-amz-pay-region"] == "eu"
    assert sent.request.headers["x-amz-pay-date"] == "20260301T120000Z"
    assert refund.amount.amount == Decimal("14.00") and isinstance(refund.amount.amount, Decimal)
    assert (refund.refund_id, refund.state, refund.request_id) == (REFUND_ID, REFUND_INITIATED, "rid-1")


def test_the_older_salt_20_algorithm_can_be_configured() -> None:
    h = make([Reply(200, refund_json())], algorithm=signing.ALGORITHM_V1)
    h.client.get_refund(REFUND_ID)
    assert verify_signed(h.sent[0]).algorithm == signing.ALGORITHM_V1


@pytest.mark.parametrize(
    ("key_id", "sandbox", "path"),
    [
        ("SANDBOX-AHEX", None, "/v2/charges/"),
        ("live-AHEX", None, "/v2/charges/"),
        ("AHEXLEGACY", True, "/sandbox/v2/charges/"),
        ("AHEXLEGACY", False, "/live/v2/charges/"),
    ],
)
def test_the_path_follows_the_key_id_prefix_or_the_configured_environment(
    key_id: str, sandbox: bool | None, path: str
) -> None:
    credentials = PayV2Credentials("A1SELLER", key_id, private_pem())
    endpoint = PayV2Endpoint("https", "pay-api.amazon.jp", "jp", sandbox)
    charge = json.dumps({"chargeId": CHARGE_ID, "statusDetails": {"state": "Captured"}}).encode()
    h = make([Reply(200, charge)], credentials=credentials, endpoint=endpoint)
    h.client.get_charge(CHARGE_ID)
    assert h.sent[0].request.url == f"https://pay-api.amazon.jp{path}{CHARGE_ID}"
    assert h.sent[0].request.headers["x-amz-pay-region"] == "jp"


@pytest.mark.parametrize(
    ("key_id", "sandbox"), [("AHEXLEGACY", None), ("SANDBOX-AHEX", False), ("LIVE-A", True)]
)
def test_an_unknown_or_contradicted_environment_is_refused_before_sending(
    key_id: str, sandbox: bool | None
) -> None:
    credentials = PayV2Credentials("A1SELLER", key_id, private_pem())
    h = make(
        [], credentials=credentials, endpoint=PayV2Endpoint("https", "pay-api.amazon.com", "us", sandbox)
    )
    with pytest.raises(ValueError, match=r"environment|key"):
        h.client.get_refund(REFUND_ID)
    assert h.sent == []


def test_regions_map_to_amazons_hosts() -> None:
    assert [endpoint_for(r).host for r in ("us", "na", "uk", "de", "eu", "jp")] == [
        "pay-api.amazon.com", "pay-api.amazon.com", "pay-api.amazon.eu", "pay-api.amazon.eu",
        "pay-api.amazon.eu", "pay-api.amazon.jp",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown Amazon Pay region"):
        endpoint_for("fr")


@pytest.mark.parametrize(
    ("amount", "currency", "key", "message"),
    [
        (Decimal("1.005"), "EUR", "k1", "decimals"),
        (Decimal("10.5"), "JPY", "k1", "decimals"),
        (Decimal("0"), "EUR", "k1", "greater than zero"),
        (Decimal("1"), "XXX", "k1", "currency"),
        (Decimal("1"), "EUR", "not/valid", "idempotency_key"),
        (Decimal("1"), "EUR", "k" * 33, "idempotency_key"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    amount: Decimal, currency: str, key: str, message: str
) -> None:
    h = make([])
    with pytest.raises(ValueError, match=message):
        h.client.create_refund(CHARGE_ID, amount, currency, idempotency_key=key)
    with pytest.raises(ValueError, match=r"float|Decimal"):
        h.client.create_refund(CHARGE_ID, 1.5, "EUR", idempotency_key="k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="charge_id"):
        h.client.create_refund("S01/../x", Decimal(1), "EUR", idempotency_key="k")
    assert h.sent == []


def test_the_simulation_code_is_sent_and_signed() -> None:
    h = make([Reply(201, refund_json())])
    h.client.create_refund(
        CHARGE_ID, Decimal("1.00"), "EUR", idempotency_key="k1", simulation_code="ProcessingFailure"
    )
    assert "x-amz-pay-simulation-code" in verify_signed(h.sent[0]).signed_headers


@pytest.mark.parametrize("code", ["AmazonRejected", "ProcessingFailure", "ProcessingFailure;Times=1",
                                  "ProcessingFailure;Times=9999"])  # fmt: skip
def test_amazons_codes_and_our_simulators_times_extension_are_sent_as_given(code: str) -> None:
    h = make([Reply(201, refund_json())])
    h.client.create_refund(CHARGE_ID, Decimal("1.00"), "EUR", idempotency_key="k1", simulation_code=code)
    assert h.sent[0].request.headers["x-amz-pay-simulation-code"] == code


@pytest.mark.parametrize(
    "code",
    ["", "Processing Failure", "AmazonRejected;Times=1", "ProcessingFailure;Times=0",
     "ProcessingFailure;Times=10000", "ProcessingFailure;Times=1\n"],
)  # fmt: skip
def test_a_simulation_code_that_could_change_the_request_is_refused_before_any_call(code: str) -> None:
    h = make([])
    with pytest.raises(ValueError, match="simulation_code"):
        h.client.create_refund(CHARGE_ID, Decimal("1.00"), "EUR", idempotency_key="k1", simulation_code=code)
    assert h.sent == []


# -- answers -----------------------------------------------------------------------------------------


def test_the_documented_refund_and_the_jp_sandbox_answers_parse_with_decimal_amounts(
    fixtures_dir: Path,
) -> None:
    names = (
        "refund-response-v2-doc-example",
        "apiv1-jp-sandbox-get-refund-response",
        "apiv1-jp-sandbox-capture-charge-response",
        "apiv1-jp-sandbox-get-charge-authorized-response",
    )
    h = make([Reply(200, (fixtures_dir / "v2" / f"{name}.json").read_bytes()) for name in names])  # fmt: skip
    doc = h.client.get_refund(REFUND_ID)
    assert (doc.state, doc.amount.amount, doc.amount.currency_code, doc.final) == (
        REFUNDED,
        Decimal("14.00"),
        "USD",
        True,
    )
    jp = h.client.get_refund("S03-4260904-6894064-R064628")
    assert (jp.state, jp.amount.amount, jp.creation_timestamp) == (
        REFUNDED,
        Decimal("100.00"),
        "1582374729128",
    )
    captured = h.client.get_charge("S03-4260904-6894064-C010879")
    assert captured.state == "Captured"
    assert captured.capture_amount is not None and captured.capture_amount.amount == Decimal("300")
    assert captured.refunded_amount is not None and captured.refunded_amount.amount == Decimal("0")
    authorized = h.client.get_charge("S03-4260904-6894064-C010879")
    assert (authorized.state, authorized.capture_amount, authorized.refunded_amount) == (
        "Authorized",
        None,
        None,
    )


def test_a_json_number_amount_is_read_without_a_float() -> None:
    h = make(
        [
            Reply(
                200,
                b'{"refundId":"R-1","chargeId":"C-1","refundAmount":{"amount":0.10,"currencyCode":"EUR"},'
                b'"statusDetails":{"state":"Declined","reasonCode":"ProcessingFailure"}}',
            )
        ]
    )
    refund = h.client.get_refund("R-1")
    assert refund.amount.amount == Decimal("0.10")
    assert (refund.state, refund.reason_code) == (DECLINED, "ProcessingFailure")


@pytest.mark.parametrize(
    "body",
    [b"<html>", b"[]", refund_json(state="Pending"), refund_json(amount="-1"), refund_json(amount="1e3")],
)
def test_an_unreadable_2xx_is_a_retryable_transport_error(body: bytes) -> None:
    h = make([Reply(200, body)], max_attempts=1)
    with pytest.raises(errors.PayV2TransportError) as caught:
        h.client.get_refund(REFUND_ID)
    assert caught.value.code == errors.MALFORMED_RESPONSE and caught.value.retryable


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "DuplicateIdempotencyKey", errors.DuplicateIdempotencyKey),
        (400, "TransactionAmountExceeded", errors.TransactionAmountExceeded),
        (401, "InvalidRequestSignature", errors.PayV2AuthenticationError),
        (403, "UnauthorizedAccess", errors.PayV2AuthenticationError),
        (404, "ResourceNotFound", errors.PayV2NotFound),
        (422, "InvalidChargeStatus", errors.InvalidChargeStatus),
        (400, "InvalidParameterValue", errors.PayV2RequestRejected),
    ],
)
def test_a_4xx_is_a_typed_error_with_the_request_id_and_is_not_retried(
    status: int, code: str, kind: type[errors.PayV2Error]
) -> None:
    h = make([Reply(status, error_json(code, "why"), {"x-amz-pay-request-id": "rid-9"})])
    with pytest.raises(kind) as caught:
        h.client.create_refund(CHARGE_ID, Decimal("1.00"), "EUR", idempotency_key="k1")
    error = caught.value
    assert (error.code, error.http_status, error.request_id, error.retryable) == (
        code,
        status,
        "rid-9",
        False,
    )
    assert "rid-9" in str(error) and "why" in str(error)
    assert len(h.sent) == 1
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(again) is kind and again.request_id == "rid-9"


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried_with_the_same_body_and_key(status: int) -> None:
    h = make([Reply(status, error_json("TooManyRequests")), Reply(201, refund_json())], rng=0.5)
    refund = h.client.create_refund(CHARGE_ID, Decimal("1.00"), "EUR", idempotency_key="k1")
    assert refund.refund_id == REFUND_ID
    first, second = h.sent
    assert first.request.body == second.request.body
    assert (
        first.request.headers["x-amz-pay-idempotency-key"]
        == second.request.headers["x-amz-pay-idempotency-key"]
    )
    assert h.clock.sleeps == [0.5]  # full jitter of the first backoff (1 s)
    verify_signed(second)


def test_a_non_json_error_answer_gets_a_code_of_ours() -> None:
    h = make([Reply(502, b"<html>bad gateway</html>")], max_attempts=1)
    with pytest.raises(errors.PayV2ServerError) as caught:
        h.client.get_refund(REFUND_ID)
    assert caught.value.code == "HTTP502" and caught.value.retryable


def test_transport_failures_are_retried_until_attempts_run_out() -> None:
    h = make([Fail(requests.ConnectionError("refused"))] * 3, max_attempts=3)
    with pytest.raises(errors.PayV2TransportError) as caught:
        h.client.get_charge(CHARGE_ID)
    assert caught.value.code == errors.CONNECTION_ERROR
    assert len(h.sent) == 3


def test_no_retry_sleeps_past_the_deadline() -> None:
    h = make([Reply(503, error_json("ServiceUnavailable"))] * 4, base_delay=2.0)
    deadline = deadline_in(1.5, monotonic=h.clock.monotonic)
    with pytest.raises(errors.PayV2ServerError):
        h.client.get_refund(REFUND_ID, deadline=deadline)
    assert len(h.sent) == 1 and h.clock.sleeps == []
    timeout = h.sent[0].timeout
    assert timeout[0] + timeout[1] <= 1.5 + 1e-9


def test_a_passed_deadline_sends_nothing() -> None:
    h = make([])
    with pytest.raises(errors.PayV2TransportError, match="deadline"):
        h.client.get_refund(REFUND_ID, deadline=h.clock.monotonic() + 0.1)
    assert h.sent == []


def test_an_unknown_seller_is_refused() -> None:
    h = make([])
    with pytest.raises(NoCredentialsForSeller):
        h.client.get_refund(REFUND_ID, seller_id="B2OTHER")


# -- the private key never leaks -----------------------------------------------------------------------


def test_the_private_key_never_reaches_logs_errors_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pem = CREDENTIALS.private_key_pem
    key_body = "".join(pem.strip().splitlines()[1:-1])
    # A server that echoes the key (none ever has it): the message is still redacted.
    h = make([Reply(500, b"echo: " + pem.encode()), Reply(400, error_json("InvalidRequestSignature", pem))],
             rng=0.0)  # fmt: skip
    with pytest.raises(errors.PayV2Error) as caught:
        h.client.create_refund(CHARGE_ID, Decimal("1.00"), "EUR", idempotency_key="k1")
    texts = [repr(CREDENTIALS), str(CREDENTIALS), repr(h.client), repr([CREDENTIALS])]
    texts += [r.getMessage() for r in caplog.records] + [repr(r.__dict__) for r in caplog.records]
    texts += [str(caught.value), repr(caught.value)]
    assert caplog.records, "the client logs every attempt"
    for text in texts:
        for line in pem.splitlines()[1:-1]:
            assert line not in text
    assert key_body[:40] not in repr(caught.value)
    assert repr(CREDENTIALS).endswith("private_key_pem='***')")


def test_a_signature_echoed_in_an_error_message_is_redacted() -> None:
    class Echo(ScriptedAdapter):
        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            signature = request.headers["authorization"].rsplit("Signature=", 1)[1]
            self.script = [Reply(400, error_json("InvalidRequest", f"you sent Signature={signature}"))]
            return super().send(request, *args, **kwargs)

    h = make([])
    h.adapter.__class__ = Echo
    with pytest.raises(errors.PayV2RequestRejected) as caught:
        h.client.get_refund(REFUND_ID)
    assert "Signature=***" in caught.value.message


@pytest.mark.parametrize("offset", [-30, -10, -1, 0, 1, 10])
def test_a_key_line_across_the_message_limit_is_redacted_before_the_message_is_cut(offset: int) -> None:
    """The cut at 1,000 characters must not leave a part of a key line that redaction no longer recognises."""
    line = CREDENTIALS.private_key_pem.splitlines()[1]
    prefix = "GetRefund: "  # the client names the operation before Amazon's message
    message = "x" * (1000 + offset - len(line) // 2 - len(prefix)) + line + "y" * 40
    h = make([Reply(400, error_json("InvalidRequest", message))])
    with pytest.raises(errors.PayV2RequestRejected) as caught:
        h.client.get_refund(REFUND_ID)
    shown = caught.value.message
    assert len(shown) <= 1000
    half = len(line) // 2
    assert line[:half] not in shown and line[half:] not in shown
    assert line[:8] not in shown and line[-8:] not in shown


def test_an_authorization_header_echoed_in_a_retried_error_never_reaches_the_error_or_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    class Echo(ScriptedAdapter):
        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            seen.append(request.headers["authorization"])
            self.script = [Reply(503, error_json("ServiceUnavailable", f"authorization: {seen[-1]}"))]
            return super().send(request, *args, **kwargs)

    h = make([], rng=0.0)
    h.adapter.__class__ = Echo
    with pytest.raises(errors.PayV2ServerError) as caught:
        h.client.create_refund(CHARGE_ID, Decimal("1.00"), "EUR", idempotency_key="k1")
    assert len(seen) == 4, "the 503 was retried with a freshly signed request each time"
    assert caught.value.message == "CreateRefund: authorization: ***"
    texts = [str(caught.value), repr(caught.value), caplog.text]
    for header in seen:
        signature = header.rsplit("Signature=", 1)[1]
        for text in texts:
            assert header not in text and signature not in text
