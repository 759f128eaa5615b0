from __future__ import annotations

import json
from typing import Any

import pytest

from amazon_pay_refunds.adapters.mws.credentials import (
    InvalidCredentialsSecret,
    NoCredentialsForSeller,
    SellerCredentials,
    parse_credentials_secret,
)

SECRET_KEY = "wJalrXUtnFEMI-SECRET-KEY-0001"
TOKEN = "amzn.mws.TOKEN-0001"


def _secret(**overrides: Any) -> str:
    document: dict[str, Any] = {
        "default_seller_id": "A1SELLER",
        "sellers": {
            "A1SELLER": {"access_key": "AKIA1", "secret_key": SECRET_KEY, "mws_auth_token": TOKEN},
            "B2SELLER": {"access_key": "AKIA2", "secret_key": "other-secret"},
        },
    }
    document.update(overrides)
    return json.dumps(document)


def test_the_default_seller_is_returned_for_none() -> None:
    book = parse_credentials_secret(_secret())
    assert book.for_seller(None) == SellerCredentials("A1SELLER", "AKIA1", SECRET_KEY, TOKEN)


def test_a_named_seller_gets_its_own_credentials_without_a_token() -> None:
    book = parse_credentials_secret(_secret())
    assert book.for_seller("B2SELLER") == SellerCredentials("B2SELLER", "AKIA2", "other-secret", None)


def test_an_unknown_seller_is_a_named_error() -> None:
    book = parse_credentials_secret(_secret())
    with pytest.raises(NoCredentialsForSeller) as caught:
        book.for_seller("C3NOBODY")
    assert caught.value.seller_id == "C3NOBODY"
    assert "C3NOBODY" in str(caught.value)


def test_a_single_seller_is_the_default_when_none_is_named() -> None:
    text = json.dumps({"sellers": {"A1SELLER": {"access_key": "AKIA1", "secret_key": SECRET_KEY}}})
    assert parse_credentials_secret(text).for_seller(None).seller_id == "A1SELLER"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("{not json " + SECRET_KEY, "not valid JSON"),
        ("[]", "JSON object"),
        (json.dumps({"default_seller_id": "A1SELLER"}), "'sellers'"),
        (json.dumps({"default_seller_id": "A1SELLER", "sellers": {}}), "'sellers'"),
        (_secret(default_seller_id="Z9MISSING"), "default_seller_id 'Z9MISSING'"),
        (json.dumps({"sellers": {"A": {"access_key": "k", "secret_key": "s"},
                                 "B": {"access_key": "k", "secret_key": "s"}}}), "default_seller_id"),
        (json.dumps({"sellers": {"A": {"access_key": "k"}}}), "sellers['A'].secret_key is missing"),
        (json.dumps({"sellers": {"A": {"access_key": "k", "secret_key": ""}}}), "sellers['A'].secret_key"),
        (json.dumps({"sellers": {"A": {"access_key": "k", "secret_key": 12345}}}), "sellers['A'].secret_key"),
        (json.dumps({"sellers": {"A": {"access_key": "k", "secret_key": f" {SECRET_KEY} "}}}),
         "sellers['A'].secret_key must not start or end with whitespace"),
        (json.dumps({"sellers": {"A": {"access_key": "k", "secret_key": "s", "secretkey": SECRET_KEY}}}),
         "unknown keys ['secretkey']"),
        (json.dumps({"sellers": {"A": "just-a-string-" + SECRET_KEY}}), "sellers['A'] must be an object"),
    ],
)  # fmt: skip
def test_a_malformed_secret_is_refused_naming_the_field_never_the_value(text: str, names: str) -> None:
    with pytest.raises(InvalidCredentialsSecret) as caught:
        parse_credentials_secret(text)
    assert names in str(caught.value)
    assert SECRET_KEY not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_repr_and_str_of_credentials_hide_the_secret_key_and_token() -> None:
    credentials = SellerCredentials("A1SELLER", "AKIA1", SECRET_KEY, TOKEN)
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert SECRET_KEY not in text
        assert TOKEN not in text
        assert "A1SELLER" in text


def test_repr_of_the_whole_book_hides_every_secret() -> None:
    book = parse_credentials_secret(_secret())
    assert SECRET_KEY not in repr(book)
    assert TOKEN not in repr(book)
    assert "other-secret" not in repr(book)
