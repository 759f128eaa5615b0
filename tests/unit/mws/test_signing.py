from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_refunds.adapters.mws import signing


def _vectors(fixtures_dir: Path) -> dict[str, Any]:
    return json.loads((fixtures_dir / "mws" / "signature-v2-vectors.json").read_text())  # type: ignore[no-any-return]


def test_every_known_answer_vector_gives_amazons_string_to_sign_and_signature(fixtures_dir: Path) -> None:
    data = _vectors(fixtures_dir)
    assert data["vectors"], "no vectors in the fixture"
    for vector in data["vectors"]:
        params = vector["params"]
        assert (
            signing.string_to_sign(data["method"], data["host"], data["path"], params)
            == (vector["string_to_sign"])
        )
        assert (
            signing.signature(data["secret_key"], data["method"], data["host"], data["path"], params)
            == (vector["signature"])
        )


def test_verify_accepts_the_right_signature_and_refuses_a_wrong_secret(fixtures_dir: Path) -> None:
    data = _vectors(fixtures_dir)
    vector = data["vectors"][0]
    args = (data["method"], data["host"], data["path"], vector["params"])
    assert signing.verify(data["secret_key"], *args, vector["signature"])
    assert not signing.verify("WRONG_SECRET", *args, vector["signature"])


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [("a b", "a%20b"), ("a+b", "a%2Bb"), ("-_.~", "-_.~"), ("ü", "%C3%BC"), ("*", "%2A"), ("/", "%2F")],
)
def test_percent_encoding_is_rfc3986_with_upper_case_hex(raw: str, encoded: str) -> None:
    assert signing.percent_encode(raw) == encoded


def test_canonical_query_sorts_by_byte_order_and_leaves_out_the_signature() -> None:
    query = signing.canonical_query({"b": "1", "B": "2", "a": "3", "Signature": "x"})
    assert query == "B=2&a=3&b=1"


def test_signed_params_carry_a_fresh_timestamp_and_the_auth_token() -> None:
    body = signing.signed_params(
        secret_key="s", access_key="AK", seller_id="SELLER", action="Refund",
        host="mws.amazonservices.com", path="/OffAmazonPayments_Sandbox/2013-01-01",
        params={"AmazonCaptureId": "C"}, mws_auth_token="amzn.mws.token",
        now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )  # fmt: skip
    assert body["Timestamp"] == "2026-01-02T03:04:05Z"
    assert body["MWSAuthToken"] == "amzn.mws.token"
    assert signing.verify(
        "s",
        "POST",
        "mws.amazonservices.com",
        "/OffAmazonPayments_Sandbox/2013-01-01",
        body,
        body["Signature"],
    )
