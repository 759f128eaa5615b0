"""The credentials secret with API v2 keys beside or instead of the MWS keys; the private key never shown."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from amazon_pay_refunds.adapters.mws.credentials import (
    InvalidCredentialsSecret,
    MissingApiCredentials,
    NoCredentialsForSeller,
    PayV2Credentials,
    parse_credentials_secret,
)
from tests.support.pay_v2_keys import private_key, private_pem

PEM = private_pem()
KEY_LINE = PEM.splitlines()[1]


def _secret(**sellers: dict[str, Any]) -> str:
    return json.dumps({"default_seller_id": next(iter(sellers)), "sellers": sellers})


def test_a_seller_with_both_kinds_of_keys_serves_both_apis() -> None:
    book = parse_credentials_secret(_secret(A1BOTH={
        "access_key": "AKIA1", "secret_key": "s", "public_key_id": "SANDBOX-AKEY", "private_key": PEM,
    }))  # fmt: skip
    assert book.for_seller(None).access_key == "AKIA1"
    v2 = book.for_v2_seller(None)
    assert v2 == PayV2Credentials("A1BOTH", "SANDBOX-AKEY", PEM)
    assert v2.private_key().public_key().public_numbers() == private_key().public_key().public_numbers()


def test_a_key_is_parsed_once_and_reused_for_every_signature() -> None:
    """Parsing a PEM costs about 35 ms of CPU; every v2 call signs with the seller's key."""
    first = PayV2Credentials("A1ONCE", "SANDBOX-AKEY", PEM).private_key()
    again = PayV2Credentials("A1ONCE", "SANDBOX-AKEY", PEM).private_key()
    assert first is again
    other = PayV2Credentials("A1ONCE", "SANDBOX-AKEY", private_pem("rotated")).private_key()
    assert other is not first


def test_a_v2_only_seller_has_no_mws_credentials_and_says_so() -> None:
    book = parse_credentials_secret(_secret(A1V2={"public_key_id": "LIVE-AKEY", "private_key": PEM}))
    assert book.for_v2_seller("A1V2").public_key_id == "LIVE-AKEY"
    with pytest.raises(MissingApiCredentials, match=r"'A1V2' has no Amazon Pay v1 \(MWS\) credentials"):
        book.for_seller("A1V2")


def test_a_v1_only_seller_has_no_v2_credentials_and_says_so() -> None:
    book = parse_credentials_secret(_secret(A1MWS={"access_key": "AKIA1", "secret_key": "s"}))
    with pytest.raises(MissingApiCredentials, match="API v2") as caught:
        book.for_v2_seller(None)
    assert isinstance(caught.value, NoCredentialsForSeller) and caught.value.seller_id == "A1MWS"
    with pytest.raises(NoCredentialsForSeller) as unknown:
        book.for_v2_seller("Z9NOBODY")
    assert not isinstance(unknown.value, MissingApiCredentials)


def _ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    ("entry", "names"),
    [
        ({"public_key_id": "SANDBOX-A"}, "sellers['A'].private_key is missing"),
        ({"private_key": PEM}, "sellers['A'].public_key_id is missing"),
        ({"public_key_id": "SANDBOX-A", "private_key": PEM.replace(KEY_LINE, KEY_LINE[::-1])},
         "sellers['A'].private_key is not an unencrypted PEM private key"),
        ({"public_key_id": "SANDBOX-A", "private_key": KEY_LINE}, "not an unencrypted PEM private key"),
        ({"public_key_id": "SANDBOX-A", "private_key": _ec_pem()}, "must be an RSA private key"),
        ({"public_key_id": "", "private_key": PEM}, "sellers['A'].public_key_id must be a non-empty string"),
        ({"public_key_id": "SANDBOX-A", "private_key": 42}, "sellers['A'].private_key must be a non-empty"),
        ({"access_key": "AK", "public_key_id": "SANDBOX-A", "private_key": PEM}, "secret_key is missing"),
    ],
)  # fmt: skip
def test_a_malformed_v2_key_is_refused_naming_the_field_never_the_value(
    entry: dict[str, Any], names: str
) -> None:
    with pytest.raises(InvalidCredentialsSecret) as caught:
        parse_credentials_secret(_secret(A=entry))
    assert names in str(caught.value)
    assert KEY_LINE not in str(caught.value) and KEY_LINE[::-1] not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_reprs_of_v2_credentials_and_of_the_book_hide_the_private_key() -> None:
    book = parse_credentials_secret(_secret(A1V2={"public_key_id": "SANDBOX-AKEY", "private_key": PEM}))
    credentials = book.for_v2_seller()
    for text in (
        repr(credentials),
        str(credentials),
        f"{credentials}",
        repr(book),
        str(book),
        repr([credentials]),
    ):
        assert "PRIVATE KEY" not in text
        assert all(line not in text for line in PEM.splitlines()[1:-1])
        assert "SANDBOX-AKEY" in text
