"""MWS Signature Version 2 (HmacSHA256): the one place requests are signed and signatures checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

SIGNATURE_METHOD = "HmacSHA256"
SIGNATURE_VERSION = "2"
API_VERSION = "2013-01-01"


def percent_encode(value: str) -> str:
    """RFC 3986: unreserved A-Za-z0-9-_.~ kept, everything else %XX in upper-case hex (space is %20)."""
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """All parameters but Signature, sorted by byte order of name, k=v joined by &."""
    items = sorted(
        ((k, v) for k, v in params.items() if k != "Signature"),
        key=lambda kv: kv[0].encode("utf-8"),
    )
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in items)


def string_to_sign(method: str, host: str, path: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}\n{host.lower()}\n{path or '/'}\n{canonical_query(params)}"


def signature(secret_key: str, method: str, host: str, path: str, params: Mapping[str, str]) -> str:
    digest = hmac.new(
        secret_key.encode("utf-8"),
        string_to_sign(method, host, path, params).encode("utf-8"),
        hashlib.sha256,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(
    secret_key: str, method: str, host: str, path: str, params: Mapping[str, str], claimed: str
) -> bool:
    """Constant-time check of a claimed signature (the simulator's side of the protocol)."""
    expected = signature(secret_key, method, host, path, params)
    return hmac.compare_digest(expected.encode("ascii"), claimed.encode("utf-8", "replace"))


def timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with seconds, as MWS expects: 2015-12-31T23:59:58Z."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_params(
    *,
    secret_key: str,
    access_key: str,
    seller_id: str,
    action: str,
    host: str,
    path: str,
    params: Mapping[str, str],
    mws_auth_token: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The complete form body of one call: common parameters, a fresh Timestamp and the Signature."""
    body = {
        "AWSAccessKeyId": access_key,
        "Action": action,
        "SellerId": seller_id,
        "SignatureMethod": SIGNATURE_METHOD,
        "SignatureVersion": SIGNATURE_VERSION,
        "Timestamp": timestamp(now),
        "Version": API_VERSION,
        **params,
    }
    if mws_auth_token:
        body["MWSAuthToken"] = mws_auth_token
    body["Signature"] = signature(secret_key, "POST", host, path, body)
    return body
