"""Answers a storefront can act on, and hostile bodies, over HTTP against the local stack.

Whether a refused `refund_id` is used up (one rule: stored refunds own their id), what a reused id's
refund is, which content type and amount format are accepted; and bodies that must be a clean 400 with
nothing stored: nesting beyond any reason, numbers of thousands of digits, duplicate keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from refunds_local.clients import Storefront
from refunds_local.stack import EmbeddedStack

from .conftest import refund_body

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
Capture = Callable[..., str]
UNKNOWN_CAPTURE = "S01-0000000-0000000-C000000"
REFUSED_BY_AMAZON = '{"SandboxSimulation": {"State": "Completed"}}'  # not a valid simulation: refused


def raw_post(
    storefront: Storefront, body: str, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    answer = storefront.request(
        "POST", "/refunds", data=body.encode("utf-8"), headers={"Content-Type": content_type}
    )
    return answer.status, answer.body


def body_text(capture_id: str, **extra: Any) -> tuple[str, str]:
    body = refund_body(capture_id, **extra)
    return str(body["refund_id"]), json.dumps(body)


# --- whether a refused refund_id is used up -------------------------------------------------------------


def test_a_refund_amazon_refused_is_stored_failed_and_says_its_refund_id_is_used_up(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture("30.00"), "10.00", seller_refund_note=REFUSED_BY_AMAZON)
    answer = storefront.post_refund(body)
    assert (answer.status, answer.error_code) == (422, "InvalidSandboxSimulationSpecified")
    details = answer.body["error"]["details"]
    assert details["refund_id_reusable"] is False
    assert details["refund"]["status"] == "Failed"
    assert "new refund_id" in answer.body["error"]["message"]


def test_reusing_the_id_of_a_failed_refund_is_409_naming_its_status_and_asking_for_a_new_id(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture("30.00"), "10.00", seller_refund_note=REFUSED_BY_AMAZON)
    assert storefront.post_refund(body).status == 422
    corrected = {**body, "seller_refund_note": "Returned item"}
    answer = storefront.post_refund(corrected)
    assert (answer.status, answer.error_code) == (409, "IdempotencyConflict")
    assert answer.body["error"]["details"] == {"refund_id": body["refund_id"], "status": "Failed"}
    message = answer.body["error"]["message"]
    assert "Failed" in message and "new refund_id" in message


def test_reusing_the_id_of_a_live_refund_is_409_naming_its_status(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture())
    assert storefront.post_refund(body).status == 202
    answer = storefront.post_refund({**body, "amount": "13.00"})
    assert (answer.status, answer.error_code) == (409, "IdempotencyConflict")
    assert answer.body["error"]["details"]["status"] == "Pending"
    assert "Pending" in answer.body["error"]["message"]


def test_a_refusal_before_anything_is_stored_says_the_refund_id_may_be_used_again(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(UNKNOWN_CAPTURE)
    answer = storefront.post_refund(body)
    assert answer.status == 422, answer.body
    assert answer.body["error"]["details"]["refund_id_reusable"] is True
    assert storefront.get_refund(body["refund_id"]).status == 404
    assert storefront.post_refund({**body, "amazon_capture_id": capture()}).status == 202


def test_a_refusal_by_the_ledger_leaves_the_refund_id_reusable(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture("10.00"), "10.01")
    answer = storefront.post_refund(body)
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert answer.body["error"]["details"]["refund_id_reusable"] is True
    assert storefront.post_refund({**body, "amount": "10.00"}).status == 202


# --- content types and amounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]
)
def test_a_body_that_is_not_json_is_415_naming_the_accepted_type(
    storefront: Storefront, capture: Capture, content_type: str
) -> None:
    refund_id, text = body_text(capture())
    status, body = raw_post(storefront, text, content_type)
    assert (status, body["error"]["code"]) == (415, "UnsupportedMediaType"), body
    assert "application/json" in body["error"]["message"]
    assert body["error"]["details"]["accepted"] == ["application/json"]
    assert storefront.get_refund(refund_id).status == 404


def test_json_with_a_charset_is_accepted(storefront: Storefront, capture: Capture) -> None:
    _, text = body_text(capture())
    assert raw_post(storefront, text, "application/json; charset=utf-8")[0] == 202


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        (10.00, "not a number"),
        ("-5.00", "12.50"),
        ("1e3", "12.50"),
        ("0.00", "greater than zero"),
        ("12.505", "at most 2 decimals"),
    ],
)
def test_an_invalid_amount_says_what_a_valid_amount_looks_like(
    storefront: Storefront, capture: Capture, amount: object, says: str
) -> None:
    answer = storefront.post_refund({**refund_body(capture()), "amount": amount})
    assert (answer.status, answer.error_code) == (422, "ValidationError"), answer.body
    [issue] = [d["issue"] for d in answer.body["error"]["details"] if d["field"] == "amount"]
    assert says in issue
    assert not issue.startswith("Value error")


# --- hostile bodies (issue 9) ---------------------------------------------------------------------------


def test_an_amount_with_a_trailing_newline_is_refused_and_nothing_is_stored(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture(), "12.50\n")
    answer = storefront.post_refund(body)
    assert (answer.status, answer.error_code) == (422, "ValidationError"), answer.body
    assert storefront.get_refund(body["refund_id"]).status == 404


def test_deeply_nested_json_is_400_malformed_request(storefront: Storefront, capture: Capture) -> None:
    refund_id, text = body_text(capture())
    nested = text[:-1] + ', "metadata2": ' + "[" * 100_000 + "]" * 100_000 + "}"
    status, body = raw_post(storefront, nested)
    assert (status, body["error"]["code"]) == (400, "MalformedRequest"), body
    assert storefront.get_refund(refund_id).status == 404


@pytest.mark.parametrize("number", ["9" * 5000, "0." + "9" * 5000, "1e999999", "NaN", "Infinity"])
def test_a_number_no_amount_could_be_is_400_malformed_request(
    storefront: Storefront, capture: Capture, number: str
) -> None:
    refund_id, text = body_text(capture())
    status, body = raw_post(storefront, text.replace('"amount": "12.50"', f'"amount": {number}'))
    assert (status, body["error"]["code"]) == (400, "MalformedRequest"), body
    assert storefront.get_refund(refund_id).status == 404


def test_a_duplicate_key_is_400_malformed_request_and_nothing_is_stored(
    storefront: Storefront, capture: Capture
) -> None:
    refund_id, text = body_text(capture("100.00"))
    duplicated = text.replace('"amount": "12.50"', '"amount": "1.00", "amount": "99.00"')
    status, body = raw_post(storefront, duplicated)
    assert (status, body["error"]["code"]) == (400, "MalformedRequest"), body
    assert "amount" in body["error"]["message"]
    assert storefront.get_refund(refund_id).status == 404


def test_a_duplicate_key_inside_metadata_is_refused_too(storefront: Storefront, capture: Capture) -> None:
    refund_id, text = body_text(capture())
    duplicated = text.replace('"metadata": {"order_id": "1001"}', '"metadata": {"a": "1", "a": "2"}')
    assert duplicated != text
    status, body = raw_post(storefront, duplicated)
    assert (status, body["error"]["code"]) == (400, "MalformedRequest"), body
    assert storefront.get_refund(refund_id).status == 404


def test_the_resolve_route_refuses_hostile_bodies_too(stack: EmbeddedStack, operator: Storefront) -> None:
    answer = operator.request(
        "POST",
        "/refunds/ord-9999-r1/resolve",
        data=b'{"method": "other", "method": "gift_card", "note": "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert (answer.status, answer.error_code) == (400, "MalformedRequest")


@pytest.mark.parametrize("field", ["refund_id", "amazon_capture_id", "seller_id", "currency_code"])
def test_every_pattern_checked_field_is_matched_whole_so_a_trailing_newline_is_refused(
    storefront: Storefront, capture: Capture, field: str
) -> None:
    body = {**refund_body(capture()), "seller_id": "A1LOCALSELLER"}
    body[field] = f"{body[field]}\n"
    answer = storefront.post_refund(body)
    assert (answer.status, answer.error_code) == (422, "ValidationError"), answer.body
    assert field in {detail["field"] for detail in answer.body["error"]["details"]}
