"""Per-seller MWS credentials, read from the Secrets Manager secret (CONTRACT §8); secrets never printed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SELLER_KEYS = frozenset({"access_key", "secret_key", "mws_auth_token"})


class InvalidCredentialsSecret(ValueError):
    """The credentials secret is not in the documented shape (the message names the field, never a value)."""


class NoCredentialsForSeller(LookupError):
    """No credentials are configured for this SellerId."""

    def __init__(self, seller_id: str) -> None:
        super().__init__(f"no Amazon Pay credentials configured for seller {seller_id!r}")
        self.seller_id = seller_id


@dataclass(frozen=True)
class SellerCredentials:
    """What signs calls for one seller. ``mws_auth_token`` when a solution provider acts for the seller."""

    seller_id: str
    access_key: str
    secret_key: str = field(repr=False)
    mws_auth_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        token = "None" if self.mws_auth_token is None else "'***'"
        return (
            f"SellerCredentials(seller_id={self.seller_id!r}, access_key={self.access_key!r}, "
            f"secret_key='***', mws_auth_token={token})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class CredentialsBook:
    """Every configured seller's credentials, and which seller is the default."""

    default_seller_id: str
    sellers: Mapping[str, SellerCredentials]

    def for_seller(self, seller_id: str | None = None) -> SellerCredentials:
        """The seller's credentials; None means the default seller. Usable as an AmazonPayClient provider."""
        wanted = self.default_seller_id if seller_id is None else seller_id
        try:
            return self.sellers[wanted]
        except KeyError:
            raise NoCredentialsForSeller(wanted) from None


def _non_empty_string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCredentialsSecret(f"{where} must be a non-empty string")
    if value != value.strip():
        raise InvalidCredentialsSecret(f"{where} must not start or end with whitespace")
    return value


def _seller(seller_id: str, entry: Any) -> SellerCredentials:
    where = f"sellers[{seller_id!r}]"
    if not isinstance(entry, dict):
        raise InvalidCredentialsSecret(f"{where} must be an object")
    unknown = sorted(set(entry) - _SELLER_KEYS)
    if unknown:
        raise InvalidCredentialsSecret(f"{where} has unknown keys {unknown}; allowed: {sorted(_SELLER_KEYS)}")
    for key in ("access_key", "secret_key"):
        if key not in entry:
            raise InvalidCredentialsSecret(f"{where}.{key} is missing")
    token = entry.get("mws_auth_token")
    return SellerCredentials(
        seller_id=seller_id,
        access_key=_non_empty_string(entry["access_key"], f"{where}.access_key"),
        secret_key=_non_empty_string(entry["secret_key"], f"{where}.secret_key"),
        mws_auth_token=None
        if token is None or token == ""
        else _non_empty_string(token, f"{where}.mws_auth_token"),
    )


def parse_credentials_secret(text: str) -> CredentialsBook:
    """``{"default_seller_id": "...", "sellers": {"<SellerId>": {"access_key", "secret_key",
    "mws_auth_token"?}}}``. ``default_seller_id`` may be left out when there is exactly one seller."""
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        # Never chain the decoder's exception: it holds the whole secret text.
        raise InvalidCredentialsSecret("the credentials secret is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidCredentialsSecret("the credentials secret must be a JSON object")
    sellers_doc = document.get("sellers")
    if not isinstance(sellers_doc, dict) or not sellers_doc:
        raise InvalidCredentialsSecret("'sellers' must be a non-empty object keyed by SellerId")
    sellers: dict[str, SellerCredentials] = {}
    for seller_id, entry in sellers_doc.items():
        _non_empty_string(seller_id, "a SellerId key in 'sellers'")
        sellers[seller_id] = _seller(seller_id, entry)
    default = document.get("default_seller_id")
    if default is None and len(sellers) == 1:
        default = next(iter(sellers))
    default = _non_empty_string(default, "default_seller_id")
    if default not in sellers:
        raise InvalidCredentialsSecret(f"default_seller_id {default!r} has no entry in 'sellers'")
    return CredentialsBook(default_seller_id=default, sellers=sellers)
