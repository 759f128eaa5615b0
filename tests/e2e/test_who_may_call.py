"""Who may call which route, over HTTP, as deployed with the defaults (StorefrontAuthorization AWS_IAM):
the local gateway answers as API Gateway does (tools/refunds_local/sigv4.py), through the template's gateway
responses (the API's error shape)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from botocore.credentials import Credentials

from refunds_local.clients import Storefront
from refunds_local.sigv4 import sign
from refunds_local.stack import EmbeddedStack

from .conftest import refund_body

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
Capture = Callable[..., str]

STOREFRONT_ROUTES = [
    ("POST", "/refunds"),
    ("GET", "/refunds/ord-1-r1"),
    ("GET", "/captures/S01-1-1-C1"),
    ("GET", "/charges/S01-1-1-C1"),
]
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


def error(answer: requests.Response) -> tuple[int, str, str]:
    body = answer.json()["error"]
    return answer.status_code, body["code"], body["message"]


def signed_post(stack: EmbeddedStack, path: str, body: bytes, credentials: Credentials) -> dict[str, str]:
    headers = {"x-api-key": stack.api_key, "Content-Type": "application/json"}
    return sign("POST", f"{stack.api_url}{path}", headers, body, credentials, stack.region)


def test_the_stack_runs_with_the_templates_default_iam_authorization(stack: EmbeddedStack) -> None:
    assert stack.storefront_authorization == "AWS_IAM"


@pytest.mark.parametrize(("method", "path"), [*STOREFRONT_ROUTES, ("POST", "/refunds/ord-1-r1/resolve")])
def test_an_unsigned_request_is_refused_even_with_the_api_key(
    stack: EmbeddedStack, method: str, path: str
) -> None:
    answer = requests.request(
        method, f"{stack.api_url}{path}", headers={"x-api-key": stack.api_key}, json={}, timeout=10
    )
    assert error(answer) == (403, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
    assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_a_request_signed_with_the_wrong_secret_key_is_refused(
    stack: EmbeddedStack, capture: Capture
) -> None:
    storefront = stack.callers["storefront"]
    wrong = Credentials(storefront.access_key_id, "x" * 40)
    body = json.dumps(refund_body(capture())).encode()
    answer = requests.post(
        f"{stack.api_url}/refunds", data=body, headers=signed_post(stack, "/refunds", body, wrong), timeout=10
    )
    assert error(answer) == (403, "INVALID_SIGNATURE", MISMATCH)
    assert answer.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_a_body_changed_after_signing_is_refused_and_nothing_is_stored(
    stack: EmbeddedStack, capture: Capture
) -> None:
    body = refund_body(capture(), "10.00")
    signed = json.dumps(body).encode()
    headers = signed_post(stack, "/refunds", signed, stack.callers["storefront"].credentials)
    tampered = json.dumps({**body, "amount": "99.00"}).encode()
    answer = requests.post(f"{stack.api_url}/refunds", data=tampered, headers=headers, timeout=10)
    assert error(answer) == (403, "INVALID_SIGNATURE", MISMATCH)
    assert (
        Storefront(stack.api_url, stack.api_key, credentials=stack.callers["storefront"].credentials)
        .get_refund(body["refund_id"])
        .status
        == 404
    )


def test_an_unknown_access_key_is_refused(stack: EmbeddedStack) -> None:
    stranger = Credentials("AKIAUNKNOWNLOCALKEY1", "s" * 40)
    answer = Storefront(stack.api_url, stack.api_key, credentials=stranger).get_refund("ord-1-r1")
    assert (answer.status, answer.error_code) == (403, "INVALID_SIGNATURE")
    assert answer.body["error"]["message"] == "The security token included in the request is invalid."


@pytest.fixture
def clock_ahead(stack: EmbeddedStack) -> Iterator[Callable[[timedelta], None]]:
    """Move the gateway's clock: a signature made now is then `offset` old (or young) when checked."""
    authorizer = stack.gateway.authorizer
    assert authorizer is not None
    saved = authorizer.clock

    def move(offset: timedelta) -> None:
        authorizer.clock = lambda: datetime.now(UTC) + offset

    yield move
    authorizer.clock = saved


def test_a_signature_more_than_five_minutes_old_is_refused(
    stack: EmbeddedStack, clock_ahead: Callable[[timedelta], None]
) -> None:
    clock_ahead(timedelta(minutes=6))
    storefront = Storefront(stack.api_url, stack.api_key, credentials=stack.callers["storefront"].credentials)
    answer = storefront.get_refund("ord-1-r1")
    assert (answer.status, answer.error_code) == (403, "INVALID_SIGNATURE")
    message = answer.body["error"]["message"]
    assert message.startswith("Signature expired: ") and "is now earlier than" in message
    assert message.endswith(" - 5 min.)")


def test_a_signature_dated_in_the_future_is_refused_too(
    stack: EmbeddedStack, clock_ahead: Callable[[timedelta], None]
) -> None:
    clock_ahead(timedelta(minutes=-6))
    storefront = Storefront(stack.api_url, stack.api_key, credentials=stack.callers["storefront"].credentials)
    answer = storefront.get_refund("ord-1-r1")
    assert (answer.status, answer.error_code) == (403, "INVALID_SIGNATURE")
    assert answer.body["error"]["message"].startswith("Signature not yet current: ")


def test_a_signature_within_five_minutes_passes(
    stack: EmbeddedStack, storefront: Storefront, clock_ahead: Callable[[timedelta], None]
) -> None:
    clock_ahead(timedelta(minutes=4))
    answer = storefront.get_refund("ord-unknown-r1")
    assert (answer.status, answer.error_code) == (404, "RefundNotFound")


def test_the_storefronts_credentials_never_resolve_a_refund(
    stack: EmbeddedStack, storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture())
    assert storefront.post_refund(body).status == 202
    answer = storefront.resolve(body["refund_id"], "gift_card", "sent a gift card")
    user = stack.callers["storefront"].arn
    resource = (
        f"arn:aws:execute-api:us-east-1:123456789012:localapi01/v1/POST/refunds/{body['refund_id']}/resolve"
    )
    assert (answer.status, answer.error_code) == (403, "ACCESS_DENIED")
    assert answer.body["error"]["message"] == (
        f"User: {user} is not authorized to perform: execute-api:Invoke on resource: {resource} "
        "with an explicit deny in an identity-based policy"
    )
    assert storefront.get_refund(body["refund_id"]).body["status"] == "Pending"


@pytest.mark.parametrize(("method", "path"), STOREFRONT_ROUTES)
def test_an_operators_credentials_do_not_reach_the_storefront_routes(
    stack: EmbeddedStack, method: str, path: str
) -> None:
    operator = Storefront(stack.api_url, stack.api_key, credentials=stack.callers["operator"].credentials)
    answer = operator.request(method, path, json={"refund_id": "r"})
    assert (answer.status, answer.error_code) == (403, "ACCESS_DENIED")
    assert (
        "because no identity-based policy allows the execute-api:Invoke action"
        in answer.body["error"]["message"]
    )


def test_ipn_needs_no_signature(stack: EmbeddedStack) -> None:
    """SNS cannot sign with SigV4: /ipn reaches its function, which refuses what SNS did not sign."""
    answer = requests.post(f"{stack.api_url}/ipn", data=b"{}", timeout=10)
    assert answer.status_code == 400


def test_the_history_records_who_requested_and_who_resolved(
    stack: EmbeddedStack, storefront: Storefront, operator: Storefront, capture: Capture
) -> None:
    note = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "AmazonRejected"}})
    body = refund_body(capture(), "10.00", seller_refund_note=note)
    assert storefront.post_refund(body).status == 202
    stack.simulator.settle(everything=True)
    storefront.wait_for_status(body["refund_id"], {"ManualActionRequired"})
    history = operator.resolve(body["refund_id"], "gift_card", "sent a gift card").body["history"]
    callers = {(entry["cause"], entry.get("caller")) for entry in history}
    assert ("api:POST /refunds", stack.callers["storefront"].arn) in callers
    assert ("operator:resolve", stack.callers["operator"].arn) in callers
    assert all(
        entry.get("caller") is None
        for entry in history
        if not entry["cause"].startswith(("api:", "operator:"))
    )
    assert stack.callers["storefront"].secret_access_key not in json.dumps(history)
