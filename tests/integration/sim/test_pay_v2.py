"""The simulator's Amazon Pay API v2 over HTTPS, driven by the project's own client (adapters/pay_v2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from amazon_pay_refunds.adapters.mws.credentials import PayV2Credentials
from amazon_pay_refunds.adapters.pay_v2 import errors, signing
from amazon_pay_refunds.adapters.pay_v2.client import PayV2Client, amz_date
from amazon_pay_refunds.adapters.pay_v2.endpoints import PayV2Endpoint
from amazon_pay_refunds.adapters.pay_v2.models import DECLINED, REFUND_INITIATED, REFUNDED
from amazon_pay_refunds.adapters.sns import LocalAuthorityTrust, SnsVerifier
from amazon_pay_refunds.adapters.sns.certificates import CertificateResponse
from amazon_pay_sim import Simulator
from amazon_pay_sim.authority import LocalAuthority
from amazon_pay_sim.receiver import IpnReceiver
from amazon_pay_sim.server import ServerHandle
from tests.integration.sim.conftest import FAST_RETRY
from tests.support.http_fakes import FixedRandom
from tests.support.pay_v2_keys import private_key, private_pem, public_pem

SELLER = "A1LOCALSELLER"
KEY_ID = "SANDBOX-AV2SIMKEY"
LEGACY_KEY_ID = "AV2LEGACYKEY"


@dataclass
class V2World:
    sim: Simulator
    handle: ServerHandle
    cert_file: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.handle.port}"

    def client(
        self, key_id: str = KEY_ID, key_name: str = "merchant", *, sandbox: bool | None = None, **options: Any
    ) -> PayV2Client:
        credentials = PayV2Credentials(SELLER, key_id, private_pem(key_name))
        endpoint = PayV2Endpoint("https", self.host, "us", sandbox)
        return PayV2Client(
            credentials, endpoint, verify=str(self.cert_file), **{"max_attempts": 1, **options}
        )

    def charge(self, amount: str = "100.00", currency: str = "USD", state: str | None = None) -> str:
        body: dict[str, str] = {"amount": amount, "currency_code": currency}
        if state:
            body["state"] = state
        response = self.control("POST", "/charges", body)
        assert response.status_code == 201, response.text
        return str(response.json()["amazon_charge_id"])

    def control(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, f"{self.handle.url}/simulator{path}", json=body, verify=str(self.cert_file), timeout=5
        )


@pytest.fixture(scope="module")
def authority() -> LocalAuthority:
    return LocalAuthority.create()


@pytest.fixture
def receiver() -> Iterator[IpnReceiver]:
    receiver = IpnReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def v2(tmp_path: Path, authority: LocalAuthority) -> Iterator[V2World]:
    sim = Simulator(settle_seconds=3600, throttling=False, authority=authority, ipn_retry=FAST_RETRY)
    sim.add_v2_key(KEY_ID, public_pem())
    sim.add_v2_key(LEGACY_KEY_ID, public_pem("legacy"))
    handle = sim.serve(tls=True)
    assert handle.url.startswith("https://") and handle.tls_certificate_pem is not None
    cert_file = tmp_path / "sim-tls.pem"
    cert_file.write_text(handle.tls_certificate_pem)
    try:
        yield V2World(sim, handle, cert_file)
    finally:
        handle.shutdown()


# -- the project's client is accepted, with both algorithms ---------------------------------------------


@pytest.mark.parametrize("algorithm", [signing.ALGORITHM_V1, signing.ALGORITHM_V2])
def test_a_refund_signed_by_the_project_is_created_read_and_settled(v2: V2World, algorithm: str) -> None:
    client = v2.client(algorithm=algorithm)
    charge_id = v2.charge("100.00", "USD")
    refund = client.create_refund(charge_id, Decimal("40.00"), "USD", idempotency_key="ord-1-r1_1")
    assert (refund.state, refund.amount.amount, refund.charge_id) == (
        REFUND_INITIATED,
        Decimal("40.00"),
        charge_id,
    )
    assert refund.request_id
    assert client.get_refund(refund.refund_id).state == REFUND_INITIATED
    v2.sim.settle(everything=True)
    assert client.get_refund(refund.refund_id).state == REFUNDED
    charge = client.get_charge(charge_id)
    assert charge.state == "Captured"
    assert charge.capture_amount is not None and charge.capture_amount.amount == Decimal("100.00")
    assert charge.refunded_amount is not None and charge.refunded_amount.amount == Decimal("40.00")
    (call,) = [c for c in v2.sim.pay_v2.calls() if c["method"] == "POST"]
    assert (call["algorithm"], call["public_key_id"], call["status"]) == (algorithm, KEY_ID, 201)


def test_a_legacy_key_id_uses_the_sandbox_path(v2: V2World) -> None:
    client = v2.client(LEGACY_KEY_ID, "legacy", sandbox=True)
    charge_id = v2.charge()
    assert client.get_charge(charge_id).charge_id == charge_id
    assert v2.sim.pay_v2.calls()[-1]["path"] == f"/sandbox/v2/charges/{charge_id}"


# -- refusals: Amazon's JSON errors with a request id ---------------------------------------------------


def test_a_request_signed_with_another_key_is_refused(v2: V2World) -> None:
    with pytest.raises(errors.PayV2AuthenticationError) as caught:
        v2.client(KEY_ID, "intruder").get_charge(v2.charge())
    assert (caught.value.code, caught.value.http_status) == ("InvalidRequestSignature", 401)
    assert caught.value.request_id


def test_an_unregistered_key_id_is_refused(v2: V2World) -> None:
    with pytest.raises(errors.PayV2AuthenticationError) as caught:
        v2.client("SANDBOX-NOBODY").get_charge(v2.charge())
    assert caught.value.code == "UnauthorizedAccess"


def test_a_live_key_is_refused_by_the_sandbox(v2: V2World) -> None:
    v2.sim.add_v2_key("LIVE-AKEY", public_pem())
    with pytest.raises(errors.PayV2AuthenticationError, match="sandbox"):
        v2.client("LIVE-AKEY").get_charge(v2.charge())


def test_idempotency_same_key_and_body_same_answer_other_body_refused(v2: V2World) -> None:
    client = v2.client()
    charge_id = v2.charge()
    first = client.create_refund(charge_id, Decimal("10.00"), "USD", idempotency_key="k-1")
    v2.sim.settle(everything=True)
    again = client.create_refund(charge_id, Decimal("10.00"), "USD", idempotency_key="k-1")
    assert again.refund_id == first.refund_id
    assert again.state == REFUND_INITIATED  # the saved answer, as first sent
    with pytest.raises(errors.DuplicateIdempotencyKey):
        client.create_refund(charge_id, Decimal("10.01"), "USD", idempotency_key="k-1")
    with pytest.raises(errors.DuplicateIdempotencyKey):
        client.create_refund(
            charge_id, Decimal("10.00"), "USD", idempotency_key="k-1", soft_descriptor="other"
        )
    assert len(v2.control("GET", f"/charges/{charge_id}").json()["refunds"]) == 1


def test_an_identical_signed_request_replayed_gets_the_same_answer(v2: V2World) -> None:
    charge_id = v2.charge()
    body = json.dumps(
        {"chargeId": charge_id, "refundAmount": {"amount": "5.00", "currencyCode": "USD"}}
    ).encode()
    # Signed and sent with the trailing slash the docs write and .NET sends.
    headers = _signed("POST", "/v2/refunds/", body, v2.host, {"x-amz-pay-idempotency-key": "replay1"})
    answers = [
        requests.post(
            f"{v2.handle.url}/v2/refunds/", data=body, headers=headers, verify=str(v2.cert_file), timeout=5
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert answers[0].headers["x-amz-pay-request-id"] != answers[1].headers["x-amz-pay-request-id"]


def _signed(
    method: str, path: str, body: bytes, host: str, extra: dict[str, str], *, date: datetime | None = None,
    unsigned: tuple[str, ...] = (),
) -> dict[str, str]:  # fmt: skip
    headers = {
        "accept": "application/json", "content-type": "application/json", "x-amz-pay-host": host,
        "x-amz-pay-region": "na", "x-amz-pay-date": amz_date(date or datetime.now(UTC)), **extra,
    }  # fmt: skip
    signed = [name for name in headers if name not in unsigned]
    canonical = signing.canonical_request(method, path, None, headers, signed, body)
    signature = signing.sign(
        private_key(), signing.ALGORITHM_V2, signing.string_to_sign(signing.ALGORITHM_V2, canonical)
    )
    auth = signing.Authorization(signing.ALGORITHM_V2, KEY_ID, tuple(sorted(signed)), signature)
    return {**headers, "authorization": auth.header()}


@pytest.mark.parametrize(
    ("skew", "unsigned"),
    [
        (timedelta(minutes=-16), ()),
        (timedelta(minutes=16), ()),
        (timedelta(0), ("x-amz-pay-date",)),
        (timedelta(0), ("x-amz-pay-idempotency-key",)),
    ],
)
def test_the_date_must_be_signed_and_within_15_minutes_and_the_idempotency_key_signed(
    v2: V2World, skew: timedelta, unsigned: tuple[str, ...]
) -> None:
    body = json.dumps(
        {"chargeId": v2.charge(), "refundAmount": {"amount": "5.00", "currencyCode": "USD"}}
    ).encode()
    date = datetime.now(UTC) + skew  # at run time: a date fixed at collection would drift with the suite
    headers = _signed("POST", "/v2/refunds", body, v2.host, {"x-amz-pay-idempotency-key": "d1"}, date=date,
                      unsigned=unsigned)  # fmt: skip
    answer = requests.post(
        f"{v2.handle.url}/v2/refunds", data=body, headers=headers, verify=str(v2.cert_file), timeout=5
    )
    assert (answer.status_code, answer.json()["reasonCode"]) == (400, "InvalidHeaderValue")
    assert answer.headers["x-amz-pay-request-id"]
    assert v2.sim.pay_v2.refunds == {}


def test_a_changed_body_under_a_valid_signature_is_refused(v2: V2World) -> None:
    body = json.dumps(
        {"chargeId": v2.charge(), "refundAmount": {"amount": "5.00", "currencyCode": "USD"}}
    ).encode()
    headers = _signed("POST", "/v2/refunds", body, v2.host, {"x-amz-pay-idempotency-key": "b1"})
    tampered = body.replace(b"5.00", b"9.00")
    answer = requests.post(
        f"{v2.handle.url}/v2/refunds", data=tampered, headers=headers, verify=str(v2.cert_file), timeout=5
    )
    assert (answer.status_code, answer.json()["reasonCode"]) == (401, "InvalidRequestSignature")


@pytest.mark.parametrize(
    ("charge", "amount", "allowed"),
    [
        (("100.00", "USD"), "115.00", True), (("100.00", "USD"), "115.01", False),
        (("1000.00", "EUR"), "1075.00", True), (("1000.00", "EUR"), "1075.01", False),
        (("100000", "JPY"), "108400", True), (("100000", "JPY"), "108401", False),
    ],
)  # fmt: skip
def test_the_over_refund_cap_is_15_percent_or_75_or_8400_whichever_is_less(
    v2: V2World, charge: tuple[str, str], amount: str, allowed: bool
) -> None:
    client = v2.client()
    charge_id = v2.charge(*charge)
    half = Decimal(amount) / 2
    half = half.quantize(Decimal(1) if charge[1] == "JPY" else Decimal("0.01"))
    client.create_refund(charge_id, half, charge[1], idempotency_key="first-half")
    rest = Decimal(amount) - half
    if allowed:
        assert (
            client.create_refund(charge_id, rest, charge[1], idempotency_key="second-half").state
            == REFUND_INITIATED
        )
    else:
        with pytest.raises(errors.TransactionAmountExceeded):
            client.create_refund(charge_id, rest, charge[1], idempotency_key="second-half")


def test_declined_refunds_do_not_count_against_the_cap(v2: V2World) -> None:
    client = v2.client()
    charge_id = v2.charge("100.00")
    client.create_refund(
        charge_id, Decimal("100.00"), "USD", idempotency_key="a1", simulation_code="AmazonRejected"
    )
    v2.sim.settle(everything=True)
    assert (
        client.create_refund(charge_id, Decimal("100.00"), "USD", idempotency_key="a2").state
        == REFUND_INITIATED
    )


@pytest.mark.parametrize("state", ["Authorized", "Canceled", "Declined"])
def test_only_a_captured_charge_can_be_refunded(v2: V2World, state: str) -> None:
    charge_id = v2.charge(state=state)
    with pytest.raises(errors.InvalidChargeStatus) as caught:
        v2.client().create_refund(charge_id, Decimal("1.00"), "USD", idempotency_key="s1")
    assert caught.value.http_status == 422
    charge = v2.client().get_charge(charge_id)
    assert (charge.state, charge.capture_amount, charge.refunded_amount) == (state, None, None)


def test_currency_mismatch_and_unknown_charges(v2: V2World) -> None:
    client = v2.client()
    with pytest.raises(errors.PayV2RequestRejected) as caught:
        client.create_refund(v2.charge(currency="EUR"), Decimal("1.00"), "USD", idempotency_key="c1")
    assert caught.value.code == "CurrencyMismatch"
    with pytest.raises(errors.PayV2NotFound):
        client.create_refund("S01-0000000-0000000-C000000", Decimal("1.00"), "USD", idempotency_key="c2")
    with pytest.raises(errors.PayV2NotFound):
        client.get_refund("S01-0000000-0000000-R000000")


def _refund_body(**changes: Any) -> bytes:
    document: dict[str, Any] = {"chargeId": "C", "refundAmount": {"amount": "1.00", "currencyCode": "USD"}}
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "InvalidRequestFormat"),
        (b"[]", "InvalidRequestFormat"),
        (_refund_body(chargeId=None), "MissingParameterValue"),
        (_refund_body(refundAmount={"amount": "1.001", "currencyCode": "USD"}), "InvalidParameterValue"),
        (_refund_body(refundAmount={"amount": "1.00", "currencyCode": "XXX"}), "InvalidParameterValue"),
        (_refund_body(note=1), "UnrecognizedField"),
        (_refund_body(softDescriptor="12345678901234567"), "InvalidParameterValue"),
    ],
)
def test_a_malformed_body_gets_amazons_400(v2: V2World, body: bytes, code: str) -> None:
    headers = _signed("POST", "/v2/refunds", body, v2.host, {"x-amz-pay-idempotency-key": "m1"})
    answer = requests.post(
        f"{v2.handle.url}/v2/refunds", data=body, headers=headers, verify=str(v2.cert_file), timeout=5
    )
    assert (answer.status_code, answer.json()["reasonCode"]) == (400, code)


def test_a_json_number_amount_is_accepted(v2: V2World) -> None:
    body = json.dumps(
        {"chargeId": v2.charge(), "refundAmount": {"amount": 12.5, "currencyCode": "USD"}}
    ).encode()
    headers = _signed("POST", "/v2/refunds", body, v2.host, {"x-amz-pay-idempotency-key": "n1"})
    answer = requests.post(
        f"{v2.handle.url}/v2/refunds", data=body, headers=headers, verify=str(v2.cert_file), timeout=5
    )
    assert answer.status_code == 201 and answer.json()["refundAmount"]["amount"] == "12.50"


# -- simulation codes, throttling, settling -------------------------------------------------------------


@pytest.mark.parametrize("code", ["AmazonRejected", "ProcessingFailure"])
def test_a_refund_simulation_code_declines_the_refund_with_that_reason(v2: V2World, code: str) -> None:
    client = v2.client()
    refund = client.create_refund(
        v2.charge(), Decimal("5.00"), "USD", idempotency_key="sim1", simulation_code=code
    )
    assert refund.state == REFUND_INITIATED
    v2.sim.settle(everything=True)
    settled = client.get_refund(refund.refund_id)
    assert (settled.state, settled.reason_code) == (DECLINED, code)
    assert settled.reason_description


def test_an_unknown_simulation_code_is_refused(v2: V2World) -> None:
    with pytest.raises(errors.PayV2RequestRejected) as caught:
        v2.client().create_refund(
            v2.charge(), Decimal("5.00"), "USD", idempotency_key="sim2", simulation_code="Bogus"
        )
    assert caught.value.code == "InvalidSandboxSimulationSpecified"


# OUR EXTENSION: ProcessingFailure;Times=N declines the first N refunds created on the charge with it.


def _settled_outcomes(
    v2: V2World, client: PayV2Client, refund_ids: list[str]
) -> list[tuple[str, str | None]]:
    v2.sim.settle(everything=True)
    return [(r.state, r.reason_code) for r in map(client.get_refund, refund_ids)]


def test_processing_failure_times_declines_the_first_refunds_and_a_later_key_is_refunded(v2: V2World) -> None:
    client, charge_id = v2.client(), v2.charge()
    made = [
        client.create_refund(
            charge_id,
            Decimal("5.00"),
            "USD",
            idempotency_key=f"pf_{n}",
            simulation_code="ProcessingFailure;Times=2",
        ).refund_id
        for n in (1, 2, 3)
    ]
    assert _settled_outcomes(v2, client, made) == [
        (DECLINED, "ProcessingFailure"), (DECLINED, "ProcessingFailure"), (REFUNDED, None),
    ]  # fmt: skip


def test_processing_failure_times_is_not_used_up_by_a_replay_or_a_refused_request(v2: V2World) -> None:
    client, charge_id = v2.client(), v2.charge("10.00")
    code = "ProcessingFailure;Times=2"
    first = client.create_refund(
        charge_id, Decimal("5.00"), "USD", idempotency_key="k1", simulation_code=code
    )
    replay = client.create_refund(
        charge_id, Decimal("5.00"), "USD", idempotency_key="k1", simulation_code=code
    )
    assert replay.refund_id == first.refund_id
    with pytest.raises(errors.TransactionAmountExceeded):  # 5 + 8 > 10 + 1.50: refused, nothing created
        client.create_refund(charge_id, Decimal("8.00"), "USD", idempotency_key="k2", simulation_code=code)
    second = client.create_refund(
        charge_id, Decimal("1.00"), "USD", idempotency_key="k3", simulation_code=code
    )
    third = client.create_refund(
        charge_id, Decimal("1.00"), "USD", idempotency_key="k4", simulation_code=code
    )
    assert _settled_outcomes(v2, client, [first.refund_id, second.refund_id, third.refund_id]) == [
        (DECLINED, "ProcessingFailure"), (DECLINED, "ProcessingFailure"), (REFUNDED, None),
    ]  # fmt: skip


def test_processing_failure_times_counts_per_charge_and_per_exact_value(v2: V2World) -> None:
    client, one, other = v2.client(), v2.charge(), v2.charge()
    made = [
        client.create_refund(charge_id, Decimal("5.00"), "USD", idempotency_key=key, simulation_code=code)
        for charge_id, key, code in [
            (one, "a1", "ProcessingFailure;Times=1"),
            (other, "b1", "ProcessingFailure;Times=1"),  # another charge: its own count
            (one, "a2", "ProcessingFailure"),  # a plain code on the same charge: always declined
            (one, "a3", "ProcessingFailure;Times=1"),
        ]
    ]
    assert _settled_outcomes(v2, client, [r.refund_id for r in made]) == [
        (DECLINED, "ProcessingFailure"), (DECLINED, "ProcessingFailure"), (DECLINED, "ProcessingFailure"),
        (REFUNDED, None),
    ]  # fmt: skip


def test_a_key_reused_with_or_without_times_is_a_duplicate_idempotency_key(v2: V2World) -> None:
    client, charge_id = v2.client(), v2.charge()
    client.create_refund(
        charge_id, Decimal("5.00"), "USD", idempotency_key="t1", simulation_code="ProcessingFailure"
    )
    with pytest.raises(errors.DuplicateIdempotencyKey):
        client.create_refund(charge_id, Decimal("5.00"), "USD", idempotency_key="t1",
                             simulation_code="ProcessingFailure;Times=1")  # fmt: skip


@pytest.mark.parametrize(
    "code",
    ["AmazonRejected;Times=1", "ProcessingFailure;Times=0", "ProcessingFailure;Times=10000",
     "ProcessingFailure;Times=x", "ProcessingFailure;Times=1;Times=2", "ProcessingFailure; Times=1"],
)  # fmt: skip
def test_a_malformed_times_extension_is_refused(v2: V2World, code: str) -> None:
    body = json.dumps({"chargeId": v2.charge(), "refundAmount": {"amount": "5.00", "currencyCode": "USD"}})
    extra = {"x-amz-pay-idempotency-key": "bad1", "x-amz-pay-simulation-code": code}
    headers = _signed("POST", "/v2/refunds", body.encode(), v2.host, extra)
    answer = requests.post(
        f"{v2.handle.url}/v2/refunds", data=body, headers=headers, verify=str(v2.cert_file), timeout=5
    )
    assert (answer.status_code, answer.json()["reasonCode"]) == (400, "InvalidSandboxSimulationSpecified")
    assert v2.sim.pay_v2.refunds == {}


def test_throttled_requests_get_429(v2: V2World) -> None:
    v2.sim.set_throttling(True)
    client = v2.client()
    charge_id = v2.charge()
    statuses = []
    for _ in range(8):
        try:
            client.get_charge(charge_id)
            statuses.append(200)
        except errors.PayV2Throttled as error:
            assert (error.code, error.http_status, error.retryable) == ("TooManyRequests", 429, True)
            statuses.append(429)
    assert statuses[:5] == [200] * 5 and 429 in statuses


def test_the_client_retries_a_429_and_succeeds_within_its_deadline(v2: V2World) -> None:
    v2.sim.set_throttling(True)
    charge_id = v2.charge()
    impatient = v2.client()
    for _ in range(5):
        impatient.get_charge(charge_id)  # the burst of the GetCharge quota (5, one more per second)
    # The longest backoffs (1 s, 2 s): the quota gives a token back each second, so the second attempt passes.
    patient = v2.client(max_attempts=4, base_delay=1.0, rng=FixedRandom(0.99))
    deadline = time.monotonic() + 10
    assert patient.get_charge(charge_id, deadline=deadline).charge_id == charge_id
    statuses = [c["status"] for c in v2.sim.pay_v2.calls()]
    assert statuses[5] == 429 and statuses[-1] == 200


def test_refunds_settle_by_time(v2: V2World) -> None:
    v2.sim.pay_v2.settle_seconds = 0.2
    refund = v2.client().create_refund(v2.charge(), Decimal("1.00"), "USD", idempotency_key="t1")
    time.sleep(0.8)  # the server's tick settles due refunds
    assert (
        v2.control("GET", f"/charges/{refund.charge_id}").json()["refunds"][0]["statusDetails"]["state"]
        == REFUNDED
    )


# -- control API ------------------------------------------------------------------------------------------


def test_control_api_charges_and_external_refunds(v2: V2World) -> None:
    charge_id = v2.charge("50.00", "GBP")
    external = v2.control("POST", f"/charges/{charge_id}/external-refund", {"amount": "20.00"})
    assert external.status_code == 201 and external.json()["statusDetails"]["state"] == REFUNDED
    charge = v2.client().get_charge(charge_id)
    assert charge.refunded_amount is not None and charge.refunded_amount.amount == Decimal("20.00")
    # The external refund counts against the cap: 50 + 7.50 - 20 = 37.50 left.
    with pytest.raises(errors.TransactionAmountExceeded):
        v2.client().create_refund(charge_id, Decimal("37.51"), "GBP", idempotency_key="x1")
    bad = [
        v2.control("POST", "/charges", {"amount": "1.00", "currency_code": "USD", "state": "Pending"}),
        v2.control("POST", "/charges", {"amount": "1.001", "currency_code": "USD"}),
        v2.control("POST", "/charges", {"amount": "1.00"}),
        v2.control(
            "POST", f"/charges/{charge_id}/external-refund", {"amount": "1.00", "refund_type": "Chargeback"}
        ),
        v2.control("POST", "/charges/S01-nope/external-refund", {"amount": "1.00"}),
    ]
    assert [r.status_code for r in bad] == [400, 400, 400, 400, 404]
    assert all("error" in r.json() for r in bad)


# -- v2 IPNs ----------------------------------------------------------------------------------------------


def test_v2_ipns_are_signed_by_the_local_sns_authority_and_carry_no_state(
    v2: V2World, receiver: IpnReceiver
) -> None:
    v2.sim.set_ipn_url(receiver.url)
    client = v2.client()
    refund = client.create_refund(v2.charge(), Decimal("3.00"), "USD", idempotency_key="ipn1")
    v2.sim.settle(everything=True)
    v2.sim.wait_for_ipn_idle(10)
    posts = receiver.take()
    assert len(posts) == 2  # created (RefundInitiated) and settled (Refunded)
    trust = LocalAuthorityTrust(v2.sim.ca_certificate_pem, v2.sim.certificate_url_prefix)
    verifier = SnsVerifier(trust, fetcher=_TlsFetcher(v2.cert_file))
    for post in posts:
        message = verifier.verify(post.body, headers=post.headers)
        document = json.loads(message.message)
        assert set(document) == {
            "MerchantID", "ObjectType", "ObjectId", "ChargePermissionId", "NotificationType",
            "NotificationId", "NotificationVersion",
        }  # fmt: skip
        assert (document["ObjectType"], document["ObjectId"], document["MerchantID"]) == (
            "REFUND",
            refund.refund_id,
            SELLER,
        )
        assert document["NotificationVersion"] == "V2"
        assert refund.charge_id.startswith(document["ChargePermissionId"])


def test_a_chargeback_posts_a_signed_chargeback_ipn_naming_the_charge_permission(
    v2: V2World, receiver: IpnReceiver
) -> None:
    """Our extension: `POST /simulator/charges/{id}/chargeback` (opt. amount: an external Refunded refund)."""
    v2.sim.set_ipn_url(receiver.url)
    charge_id = v2.charge("40.00", "USD")
    permission = v2.client().get_charge(charge_id).charge_permission_id

    quiet = v2.control("POST", f"/charges/{charge_id}/chargeback", {})
    paid = v2.control("POST", f"/charges/{charge_id}/chargeback", {"amount": "15.00"})
    v2.sim.wait_for_ipn_idle(10)

    assert (quiet.status_code, paid.status_code) == (201, 201)
    assert {quiet.json()["charge_permission_id"], paid.json()["charge_permission_id"]} == {permission}
    assert quiet.json()["chargeback_id"] != paid.json()["chargeback_id"]
    charge = v2.client().get_charge(charge_id)
    assert charge.refunded_amount is not None and charge.refunded_amount.amount == Decimal("15.00")
    trust = LocalAuthorityTrust(v2.sim.ca_certificate_pem, v2.sim.certificate_url_prefix)
    verifier = SnsVerifier(trust, fetcher=_TlsFetcher(v2.cert_file))
    documents = [json.loads(verifier.verify(p.body, headers=p.headers).message) for p in receiver.take()]
    assert [(d["ObjectType"], d["ChargePermissionId"]) for d in documents] == [
        ("CHARGEBACK", permission), ("REFUND", permission), ("CHARGEBACK", permission),
    ]  # fmt: skip
    assert [d["ObjectId"] for d in documents if d["ObjectType"] == "CHARGEBACK"] == [
        quiet.json()["chargeback_id"], paid.json()["chargeback_id"],
    ]  # fmt: skip
    bad = [
        v2.control("POST", "/charges/S01-nope/chargeback", {}),
        v2.control("POST", f"/charges/{charge_id}/chargeback", {"amount": "1.001"}),
        v2.control("POST", f"/charges/{charge_id}/chargeback", {"state": "Open"}),
    ]
    assert [r.status_code for r in bad] == [404, 400, 400]


class _TlsFetcher:
    """Fetches the signing certificate from the HTTPS simulator, trusting its self-signed certificate."""

    def __init__(self, cert_file: Path) -> None:
        self.cert_file = cert_file

    def __call__(self, url: str) -> CertificateResponse:
        response = requests.get(url, timeout=5, verify=str(self.cert_file), allow_redirects=False)
        return CertificateResponse(response.status_code, response.content)


# -- the CLI ------------------------------------------------------------------------------------------------


def test_cli_serves_https_with_registered_v2_keys(tmp_path: Path) -> None:
    key_file = tmp_path / "merchant.pub.pem"
    key_file.write_text(public_pem())
    cert_file = tmp_path / "tls.pem"
    script = Path(sys.executable).parent / "amazon-pay-sim"
    process = subprocess.Popen(
        [str(script), "--port", "0", "--no-throttling", "--tls", "--tls-cert-file", str(cert_file),
         "--v2-public-key-id", KEY_ID, "--v2-public-key", str(key_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("amazon-pay-sim listening on https://127.0.0.1:")
        url = first.rsplit(" ", 1)[-1].strip()
        lines = [process.stdout.readline() for _ in range(6)]
        assert any(KEY_ID in line for line in lines), lines
        created = requests.post(
            f"{url}/simulator/charges",
            json={"amount": "9.00", "currency_code": "USD"},
            verify=str(cert_file),
            timeout=5,
        )
        assert created.status_code == 201
        port = int(url.rsplit(":", 1)[1])
        endpoint = PayV2Endpoint("https", f"127.0.0.1:{port}", "us")
        credentials = PayV2Credentials(SELLER, KEY_ID, private_pem())
        client = PayV2Client(credentials, endpoint, verify=str(cert_file), max_attempts=1)
        charge_id = created.json()["amazon_charge_id"]
        assert (
            client.create_refund(charge_id, Decimal("9.00"), "USD", idempotency_key="cli1").state
            == REFUND_INITIATED
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_refuses_unpaired_v2_key_options(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "amazon-pay-sim"
    done = subprocess.run(
        [str(script), "--port", "0", "--v2-public-key-id", KEY_ID], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2 and "--v2-public-key" in done.stderr


# -- faults: the client's retries against the server, never two refunds -----------------------------------


def _fault(v2: V2World, operation: str, fault: str, **extra: Any) -> None:
    response = v2.control("POST", "/faults", {"operation": operation, "fault": fault, **extra})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("fault", "extra"),
    [("503", {}), ("500", {}), ("throttle", {}), ("accept-then-timeout", {"hold_seconds": 3}),
     ("accept-then-unreadable", {}), ("timeout", {"hold_seconds": 3})],
)  # fmt: skip
def test_a_retried_create_refund_makes_exactly_one_refund(
    v2: V2World, fault: str, extra: dict[str, Any]
) -> None:
    charge_id = v2.charge()
    _fault(v2, "CreateRefund", fault, **extra)
    client = v2.client(max_attempts=3, base_delay=0.05, timeout=(1.0, 1.0))
    refund = client.create_refund(charge_id, Decimal("10.00"), "USD", idempotency_key="once-1")
    assert refund.state == REFUND_INITIATED
    posts = [c for c in v2.sim.pay_v2.calls() if c["method"] == "POST"]
    assert len(posts) == 2 and {c["idempotency_key"] for c in posts} == {"once-1"}
    assert len(v2.control("GET", f"/charges/{charge_id}").json()["refunds"]) == 1


def test_faults_name_v2_operations_or_are_refused(v2: V2World) -> None:
    response = v2.control("POST", "/faults", {"operation": "DeleteRefund", "fault": "503"})
    assert response.status_code == 400 and "CreateRefund" in response.json()["error"]["message"]


def test_a_salt_20_signature_labelled_v2_is_refused(v2: V2World) -> None:
    body = b""
    path = f"/v2/charges/{v2.charge()}"
    headers = _signed("GET", path, body, v2.host, {})
    auth = signing.parse_authorization(headers["authorization"])
    canonical = signing.canonical_request("GET", path, None, headers, auth.signed_headers, body)
    text = signing.string_to_sign(signing.ALGORITHM_V2, canonical)
    salt_20 = signing.sign(private_key(), signing.ALGORITHM_V1, text)  # the V2 text, signed with salt 20
    headers["authorization"] = signing.Authorization(
        signing.ALGORITHM_V2, KEY_ID, auth.signed_headers, salt_20
    ).header()
    answer = requests.get(f"{v2.handle.url}{path}", headers=headers, verify=str(v2.cert_file), timeout=5)
    assert (answer.status_code, answer.json()["reasonCode"]) == (401, "InvalidRequestSignature")
    headers["authorization"] = signing.Authorization(
        signing.ALGORITHM_V2,
        KEY_ID,
        auth.signed_headers,
        signing.sign(private_key(), signing.ALGORITHM_V2, text),
    ).header()
    assert (
        requests.get(
            f"{v2.handle.url}{path}", headers=headers, verify=str(v2.cert_file), timeout=5
        ).status_code
        == 200
    )
