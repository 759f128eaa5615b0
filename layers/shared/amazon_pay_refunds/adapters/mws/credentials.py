"""Per-seller Amazon Pay credentials from the Secrets Manager secret (CONTRACT §8); secrets never printed.

A seller entry holds its MWS keys (v1), its API v2 key (``public_key_id`` and the RSA ``private_key`` PEM), or
both. v1 callers read `CredentialsBook.for_seller`, v2 callers `CredentialsBook.for_v2_seller`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

_MWS_KEYS = frozenset({"access_key", "secret_key", "mws_auth_token"})
_V2_KEYS = frozenset({"public_key_id", "private_key"})
_SELLER_KEYS = _MWS_KEYS | _V2_KEYS


class InvalidCredentialsSecret(ValueError):
    """The credentials secret is not in the documented shape (the message names the field, never a value)."""


class NoCredentialsForSeller(LookupError):
    """No credentials are configured for this SellerId."""

    def __init__(self, seller_id: str) -> None:
        super().__init__(f"no Amazon Pay credentials configured for seller {seller_id!r}")
        self.seller_id = seller_id


class MissingApiCredentials(NoCredentialsForSeller):
    """The seller is configured, but not for this API (e.g. a v2 call for a seller with MWS keys only)."""

    def __init__(self, seller_id: str, api: str) -> None:
        LookupError.__init__(self, f"seller {seller_id!r} has no Amazon Pay {api} credentials configured")
        self.seller_id = seller_id
        self.api = api


@dataclass(frozen=True)
class PayV2Credentials:
    """What signs Amazon Pay API v2 calls for one seller: the public key id and the RSA private key (PEM).

    ``private_key_pem`` never appears in a repr, str or error; `private_key()` loads it for signing.
    """

    seller_id: str
    public_key_id: str
    private_key_pem: str = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"PayV2Credentials(seller_id={self.seller_id!r}, public_key_id={self.public_key_id!r}, "
            "private_key_pem='***')"
        )

    __str__ = __repr__

    def private_key(self) -> rsa.RSAPrivateKey:
        return _rsa_private_key(self.private_key_pem, f"sellers[{self.seller_id!r}].private_key")


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
    """Every configured seller's credentials, and which seller is the default.

    ``sellers`` holds the sellers with MWS keys, ``v2_sellers`` those with an API v2 key; a seller may be in
    both."""

    default_seller_id: str
    sellers: Mapping[str, SellerCredentials]
    v2_sellers: Mapping[str, PayV2Credentials] = field(default_factory=dict)

    def for_seller(self, seller_id: str | None = None) -> SellerCredentials:
        """The seller's credentials; None means the default seller. Usable as an AmazonPayClient provider."""
        wanted = self.default_seller_id if seller_id is None else seller_id
        try:
            return self.sellers[wanted]
        except KeyError:
            if wanted in self.v2_sellers:
                raise MissingApiCredentials(wanted, "v1 (MWS)") from None
            raise NoCredentialsForSeller(wanted) from None

    def for_v2_seller(self, seller_id: str | None = None) -> PayV2Credentials:
        """The seller's API v2 key; None means the default seller. Usable as a PayV2Client provider."""
        wanted = self.default_seller_id if seller_id is None else seller_id
        try:
            return self.v2_sellers[wanted]
        except KeyError:
            if wanted in self.sellers:
                raise MissingApiCredentials(wanted, "API v2") from None
            raise NoCredentialsForSeller(wanted) from None


def _non_empty_string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCredentialsSecret(f"{where} must be a non-empty string")
    if value != value.strip():
        raise InvalidCredentialsSecret(f"{where} must not start or end with whitespace")
    return value


@functools.lru_cache(maxsize=32)
def _rsa_private_key(pem: str, where: str) -> rsa.RSAPrivateKey:
    """The loaded key, kept per PEM: parsing one costs about 35 ms of CPU, and every v2 call signs. A refused
    PEM raises every time (lru_cache keeps no exception); a rotated key is another PEM, another entry."""
    # Imported here, not with the module: a function that never reads a v2 key (RefundApi on a v1-only
    # deployment) does not load cryptography's RSA at its cold start.
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except (TypeError, ValueError, UnicodeError):
        # Never chain the loader's exception: it may quote the key material.
        raise InvalidCredentialsSecret(f"{where} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidCredentialsSecret(f"{where} must be an RSA private key (Amazon Pay signs RSASSA-PSS)")
    return key


def _v2_seller(seller_id: str, entry: dict[str, Any]) -> PayV2Credentials | None:
    where = f"sellers[{seller_id!r}]"
    present = _V2_KEYS & set(entry)
    if not present:
        return None
    missing = sorted(_V2_KEYS - present)
    if missing:
        raise InvalidCredentialsSecret(
            f"{where}.{missing[0]} is missing (an API v2 key needs public_key_id and private_key)"
        )
    private_key = entry["private_key"]
    if not isinstance(private_key, str) or not private_key.strip():
        raise InvalidCredentialsSecret(f"{where}.private_key must be a non-empty string")
    _rsa_private_key(private_key, f"{where}.private_key")
    return PayV2Credentials(
        seller_id=seller_id,
        public_key_id=_non_empty_string(entry["public_key_id"], f"{where}.public_key_id"),
        private_key_pem=private_key,
    )


def _entry(seller_id: str, entry: Any) -> tuple[SellerCredentials | None, PayV2Credentials | None]:
    where = f"sellers[{seller_id!r}]"
    if not isinstance(entry, dict):
        raise InvalidCredentialsSecret(f"{where} must be an object")
    unknown = sorted(set(entry) - _SELLER_KEYS)
    if unknown:
        raise InvalidCredentialsSecret(f"{where} has unknown keys {unknown}; allowed: {sorted(_SELLER_KEYS)}")
    v2 = _v2_seller(seller_id, entry)
    if v2 is not None and not _MWS_KEYS & set(entry):
        return None, v2  # an API v2 key instead of the MWS keys
    return _seller(seller_id, entry), v2


def _seller(seller_id: str, entry: dict[str, Any]) -> SellerCredentials:
    where = f"sellers[{seller_id!r}]"
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
    "mws_auth_token"?, "public_key_id"?, "private_key"?}}}``: each seller has its MWS keys, its API v2 key
    (``public_key_id`` and ``private_key``, both or neither), or both. ``default_seller_id`` may be left out
    when there is exactly one seller."""
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
    v2_sellers: dict[str, PayV2Credentials] = {}
    for seller_id, entry in sellers_doc.items():
        _non_empty_string(seller_id, "a SellerId key in 'sellers'")
        mws, v2 = _entry(seller_id, entry)
        if mws is not None:
            sellers[seller_id] = mws
        if v2 is not None:
            v2_sellers[seller_id] = v2
    default = document.get("default_seller_id")
    if default is None and len(sellers_doc) == 1:
        default = next(iter(sellers_doc))
    default = _non_empty_string(default, "default_seller_id")
    if default not in sellers_doc:
        raise InvalidCredentialsSecret(f"default_seller_id {default!r} has no entry in 'sellers'")
    return CredentialsBook(default_seller_id=default, sellers=sellers, v2_sellers=v2_sellers)
