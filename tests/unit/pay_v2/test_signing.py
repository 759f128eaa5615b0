"""API v2 signing against the official Java SDK's test vectors, and RSASSA-PSS with both salt lengths."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_refunds.adapters.pay_v2 import signing
from tests.support.paths import FIXTURES
from tests.support.pay_v2_keys import private_key

# The Java SDK's test (CreateStringToSignTest) signs every vector with these fixed headers.
JAVA_TEST_HEADERS = {
    "accept": "application/json",
    "content-type": "application/json",
    "x-amz-pay-date": "20180524T223710Z",
    "x-amz-pay-host": "pay-api.amazon.eu",
    "x-amz-pay-region": "EU",
}


def _java_vectors() -> list[dict[str, Any]]:
    text = (FIXTURES / "v2" / "java-sdk-signing-testdata.js").read_text(encoding="utf-8").strip()
    # A JS array with a trailing comma (see tests/fixtures/v2/README.md).
    return list(json.loads(re.sub(r",\s*\]$", "]", text)))


JAVA_VECTORS = _java_vectors()


def test_all_34_java_vectors_are_read() -> None:
    assert len(JAVA_VECTORS) == 34
    algorithms = {vector["stringToSign"].split("\n")[0] for vector in JAVA_VECTORS}
    assert algorithms == {signing.ALGORITHM_V1, signing.ALGORITHM_V2}


@pytest.mark.parametrize(
    "vector", JAVA_VECTORS, ids=[f"{n:02d}-{v['name']}" for n, v in enumerate(JAVA_VECTORS)]
)
def test_java_sdk_vector(vector: dict[str, Any]) -> None:
    algorithm = vector["stringToSign"].split("\n")[0]
    canonical = signing.canonical_request(
        vector["method"],
        vector["uri"],
        vector["parameters"],
        JAVA_TEST_HEADERS,
        list(JAVA_TEST_HEADERS),
        vector["payload"].encode("utf-8"),
    )
    assert canonical == vector["canonicalRequest"]
    assert signing.string_to_sign(algorithm, canonical) == vector["stringToSign"]


def test_post_vector_with_body_and_idempotency_key() -> None:
    extra = json.loads((FIXTURES / "v2" / "signing-vectors-extra.json").read_text())
    vector = extra["rubyThirdParty_takahashim_amazon-pay-v2"]
    headers = {
        "accept": "application/json",
        "content-type": "application/json",
        "x-amz-pay-date": "20190923T231908Z",
        "x-amz-pay-host": "pay-api.amazon.com",
        "x-amz-pay-idempotency-key": "cllHyiNvS8cJ8Zas",
        "x-amz-pay-region": "us",
    }
    canonical = signing.canonical_request(
        "POST", vector["uri"], None, headers, list(headers), vector["payload"].encode("utf-8")
    )
    assert canonical == vector["canonicalRequest"]
    assert signing.string_to_sign(signing.ALGORITHM_V1, canonical) == vector["stringToSign"]


def test_php_canonical_query_expectation() -> None:
    extra = json.loads((FIXTURES / "v2" / "signing-vectors-extra.json").read_text())["phpSdkUnitExpectations"]
    params = {
        "chargePermissionId": "P03-0772540-6944847",
        "chargeReferenceId": "chargeReferenceId-1",
        "chargeTotal": "100.50",
        "currencyCode": "JPY",
        "amount": "100.50",
        "softDescriptor": "chargeTest-1",
        "metadata.1": "shoe sale",
        "metadata.2": "Information about order",
        "customInformation": "Information about order",
        "merchantOrderId": "Order 123",
        "merchantStoreName": "Name of Store",
        "empty": "",
    }
    assert signing.canonical_query(params) == extra["canonicalQuery"]
    assert signing.canonical_path(next(iter(extra["canonicalUriOf"]))) == "/sandbox/in-store/v999/charge"


@pytest.mark.parametrize("algorithm", [signing.ALGORITHM_V1, signing.ALGORITHM_V2])
def test_a_signature_verifies_only_with_its_own_salt_length_and_text(algorithm: str) -> None:
    key = private_key()
    text = signing.string_to_sign(algorithm, "GET\n/\n\n")
    signature = signing.sign(key, algorithm, text)
    assert signing.verify(key.public_key(), algorithm, text, signature)
    other = signing.ALGORITHM_V2 if algorithm == signing.ALGORITHM_V1 else signing.ALGORITHM_V1
    assert not signing.verify(key.public_key(), other, text, signature)
    assert not signing.verify(key.public_key(), algorithm, text + "0", signature)
    assert not signing.verify(private_key("other").public_key(), algorithm, text, signature)
    assert not signing.verify(key.public_key(), algorithm, text, "not base64!")


def test_sign_request_signs_every_header_and_round_trips_through_parse_authorization() -> None:
    key = private_key()
    headers = signing.sign_request(
        private_key=key,
        public_key_id="SANDBOX-AHEXAMPLE",
        algorithm=signing.ALGORITHM_V2,
        method="POST",
        uri="/v2/refunds",
        query=None,
        headers={"Accept": "application/json", "X-Amz-Pay-Date": "20260101T000000Z", "User-Agent": " "},
        payload=b"{}",
    )
    parsed = signing.parse_authorization(headers["authorization"])
    assert parsed.public_key_id == "SANDBOX-AHEXAMPLE"
    assert parsed.signed_headers == ("accept", "x-amz-pay-date")  # the empty User-Agent is not sent
    canonical = signing.canonical_request("POST", "/v2/refunds", None, headers, parsed.signed_headers, b"{}")
    text = signing.string_to_sign(parsed.algorithm, canonical)
    assert signing.verify(key.public_key(), parsed.algorithm, text, parsed.signature)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "AMZN-PAY-RSASSA-PSS PublicKeyId=K, Signature=abc",
        "HMAC PublicKeyId=K, SignedHeaders=a;b, Signature=abc",
        "AMZN-PAY-RSASSA-PSS PublicKeyId=K, SignedHeaders=a;;b, Signature=abc",
    ],
)
def test_a_malformed_authorization_header_is_a_signing_error(value: str) -> None:
    with pytest.raises(signing.SigningError):
        signing.parse_authorization(value)


def test_a_signed_header_missing_from_the_request_is_a_signing_error() -> None:
    with pytest.raises(signing.SigningError, match="x-amz-pay-date"):
        signing.canonical_request("GET", "/", None, {"accept": "a"}, ["accept", "X-Amz-Pay-Date"], b"")


def test_fixtures_path_is_inside_the_repository() -> None:
    assert Path(FIXTURES).is_relative_to(Path(__file__).resolve().parents[3])
