"""The local gateway's IAM authorization (refunds_local/sigv4.py), without HTTP: botocore signs now, the
Authorizer checks (its clock set where a test says)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.credentials import Credentials

from refunds_local.sigv4 import Authorizer, Caller, Refused, local_callers, sign
from refunds_local.template import load_template

HOST = "127.0.0.1:3000"


@pytest.fixture(scope="module")
def callers() -> dict[str, Caller]:
    return local_callers(load_template(), region="us-east-1", api_id="localapi01", stack_name="refunds-local")


def authorizer(callers: dict[str, Caller]) -> Authorizer:
    return Authorizer(list(callers.values()), region="us-east-1", api_id="localapi01", stage="v1")


def signed(method: str, target: str, body: bytes, credentials: Credentials) -> list[tuple[str, str]]:
    """What the client sends: botocore's SigV4 headers (signed now) and the host."""
    headers = sign(method, f"http://{HOST}{target}", {"x-api-key": "k"}, body, credentials, "us-east-1")
    return [("Host", HOST), *headers.items()]


def test_a_storefront_signature_on_a_storefront_route_names_the_storefront(
    callers: dict[str, Caller],
) -> None:
    storefront = callers["storefront"]
    headers = signed("POST", "/refunds", b'{"a": 1}', storefront.credentials)
    assert authorizer(callers).authorize("POST", "/refunds", headers, b'{"a": 1}') == storefront


def test_the_query_string_is_part_of_the_signature(callers: dict[str, Caller]) -> None:
    operator = callers["operator"]
    headers = signed("POST", "/refunds/r1/resolve?b=2&a=1", b"", operator.credentials)
    check = authorizer(callers)
    assert check.authorize("POST", "/refunds/r1/resolve?b=2&a=1", headers, b"") == operator
    changed = check.authorize("POST", "/refunds/r1/resolve?b=3&a=1", headers, b"")
    assert isinstance(changed, Refused) and changed.response_type == "INVALID_SIGNATURE"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("secret", "The request signature we calculated does not match"),
        ("body", "The request signature we calculated does not match"),
        ("path", "The request signature we calculated does not match"),
        ("unknown key", "The security token included in the request is invalid."),
        ("service", "Credential should be scoped to correct service: 'execute-api'."),
    ],
)
def test_anything_but_the_signed_request_by_a_known_key_is_invalid(
    callers: dict[str, Caller], change: str, expected: str
) -> None:
    storefront = callers["storefront"]
    credentials = {
        "secret": Credentials(storefront.access_key_id, "wrong" * 8),
        "unknown key": Credentials("AKIANOTAKNOWNKEY0000", storefront.secret_access_key),
    }.get(change, storefront.credentials)
    headers = signed("POST", "/refunds", b"{}", credentials)
    if change == "service":
        headers = [(n, v.replace("/execute-api/", "/s3/") if n == "Authorization" else v) for n, v in headers]
    body = b'{"x": 1}' if change == "body" else b"{}"
    path = "/refunds/other" if change == "path" else "/refunds"
    refused = authorizer(callers).authorize("POST", path, headers, body)
    assert isinstance(refused, Refused)
    assert (refused.response_type, refused.message[: len(expected)]) == ("INVALID_SIGNATURE", expected)


def test_no_authorization_header_is_a_missing_token(callers: dict[str, Caller]) -> None:
    refused = authorizer(callers).authorize("GET", "/refunds/r1", [("Host", HOST), ("x-api-key", "k")], b"")
    assert refused == Refused(
        "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", "MissingAuthenticationTokenException"
    )


@pytest.mark.parametrize(
    ("age", "allowed"),
    [
        (timedelta(minutes=4, seconds=59), True),
        (timedelta(minutes=5, seconds=1), False),
        (-timedelta(minutes=6), False),
    ],
)
def test_a_signature_is_good_for_five_minutes_either_way(
    callers: dict[str, Caller], age: timedelta, allowed: bool
) -> None:
    storefront = callers["storefront"]
    headers = signed("GET", "/refunds/r1", b"", storefront.credentials)
    signed_at = datetime.strptime(dict(headers)["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    checked_at = signed_at + age
    check = authorizer(callers)
    check.clock = lambda: checked_at
    decided = check.authorize("GET", "/refunds/r1", headers, b"")
    if allowed:
        assert decided == storefront
        return
    assert isinstance(decided, Refused) and decided.response_type == "INVALID_SIGNATURE"

    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y%m%dT%H%M%SZ")

    if age > timedelta(0):
        assert decided.message == (
            f"Signature expired: {stamp(signed_at)} is now earlier than "
            f"{stamp(checked_at - timedelta(minutes=5))} ({stamp(checked_at)} - 5 min.)"
        )
    else:
        assert decided.message.startswith(
            f"Signature not yet current: {stamp(signed_at)} is still later than"
        )


def test_the_storefront_is_denied_resolve_explicitly_and_the_operator_the_storefront_routes(
    callers: dict[str, Caller],
) -> None:
    check = authorizer(callers)
    storefront, operator = callers["storefront"], callers["operator"]
    denied = check.authorize(
        "POST", "/refunds/r1/resolve", signed("POST", "/refunds/r1/resolve", b"", storefront.credentials), b""
    )
    resource = "arn:aws:execute-api:us-east-1:123456789012:localapi01/v1/POST/refunds/r1/resolve"
    assert denied == Refused(
        "ACCESS_DENIED",
        f"User: {storefront.arn} is not authorized to perform: execute-api:Invoke on resource: {resource} "
        "with an explicit deny in an identity-based policy",
        "AccessDeniedException",
    )
    for method, path in (("POST", "/refunds"), ("GET", "/refunds/r1"), ("GET", "/captures/c1")):
        refused: Any = check.authorize(method, path, signed(method, path, b"", operator.credentials), b"")
        assert isinstance(refused, Refused) and refused.response_type == "ACCESS_DENIED", path
        assert refused.message.endswith(
            "because no identity-based policy allows the execute-api:Invoke action"
        )


def test_callers_get_fresh_keys_and_never_show_their_secret(callers: dict[str, Caller]) -> None:
    again = local_callers(
        load_template(), region="us-east-1", api_id="localapi01", stack_name="refunds-local"
    )
    for name, caller in callers.items():
        assert caller.access_key_id != again[name].access_key_id
        assert caller.secret_access_key != again[name].secret_access_key
        assert caller.secret_access_key not in repr(caller)
        assert caller.access_key_id.startswith("AKIA") and len(caller.secret_access_key) == 40
    assert set(callers["storefront"].policies) == {"StorefrontPolicy"}
    assert set(callers["operator"].policies) == {"OperatorPolicy"}
