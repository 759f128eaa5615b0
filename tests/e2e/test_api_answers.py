"""Every answer of the storefront API (CONTRACT §3), over HTTP against the local stack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from refunds_local.clients import SimulatorControl, Storefront
from refunds_local.stack import EmbeddedStack

from .conftest import new_refund_id, refund_body

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
Capture = Callable[..., str]
GATEWAY_FORBIDDEN = {"error": {"code": "INVALID_API_KEY", "message": "Forbidden"}}


def amazon_refund_calls(simulator: SimulatorControl, refund_id: str) -> list[dict[str, Any]]:
    return [
        call
        for call in simulator.calls()
        if call["action"] == "Refund"
        and call["params"].get("RefundReferenceId", "").startswith(f"{refund_id}_")
    ]


def test_a_new_refund_is_accepted_with_202_and_is_pending_at_amazon(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture("100.00"), "12.50")
    answer = storefront.post_refund(body)
    assert answer.status == 202, answer.body
    refund = answer.body
    assert (refund["refund_id"], refund["amount"], refund["currency_code"]) == (
        body["refund_id"],
        "12.50",
        "USD",
    )
    assert refund["status"] == "Pending"
    [attempt] = refund["attempts"]
    assert attempt["refund_reference_id"] == f"{body['refund_id']}_1"
    assert attempt["amazon_refund_id"].startswith("S01-")
    assert refund["history"][0] == {
        "at": refund["created_at"],
        "from": None,
        "to": "Requested",
        "cause": "api:POST /refunds",
        "caller": "arn:aws:iam::123456789012:user/refunds-local-storefront",
    }
    assert refund["metadata"] == {"order_id": "1001"}


def test_the_same_request_again_answers_200_with_the_same_refund_and_calls_amazon_once(
    storefront: Storefront, capture: Capture, simulator: SimulatorControl
) -> None:
    body = refund_body(capture())
    first = storefront.post_refund(body)
    again = storefront.post_refund(body)
    assert (first.status, again.status) == (202, 200)
    assert again.body["refund_id"] == first.body["refund_id"]
    assert again.body["attempts"][0]["amazon_refund_id"] == first.body["attempts"][0]["amazon_refund_id"]
    assert len(amazon_refund_calls(simulator, body["refund_id"])) == 1


def test_the_same_refund_id_with_another_body_is_409_idempotency_conflict(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture())
    assert storefront.post_refund(body).status == 202
    answer = storefront.post_refund({**body, "amount": "13.00"})
    assert (answer.status, answer.error_code) == (409, "IdempotencyConflict")
    assert storefront.get_refund(body["refund_id"]).body["amount"] == "12.50"


def test_more_than_the_capture_holds_is_422_refund_exceeds_capture(
    storefront: Storefront, capture: Capture
) -> None:
    capture_id = capture("20.00")
    assert storefront.post_refund(refund_body(capture_id, "15.00")).status == 202
    body = refund_body(capture_id, "5.01")
    answer = storefront.post_refund(body)
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert answer.body["error"]["details"] == {
        "requested": "5.01",
        "available": "5.00",
        "currency_code": "USD",
        "refund_id_reusable": True,
    }
    assert storefront.get_refund(body["refund_id"]).status == 404


def test_a_pending_capture_is_422_capture_not_refundable(storefront: Storefront, capture: Capture) -> None:
    answer = storefront.post_refund(refund_body(capture(state="Pending")))
    assert (answer.status, answer.error_code) == (422, "CaptureNotRefundable")
    assert answer.body["error"]["details"]["capture_state"] == "Pending"


def test_another_currency_than_the_captures_is_422_currency_mismatch(
    storefront: Storefront, capture: Capture
) -> None:
    answer = storefront.post_refund(refund_body(capture("100.00", "USD"), "10.00", "EUR"))
    assert (answer.status, answer.error_code) == (422, "CurrencyMismatch")
    assert answer.body["error"]["details"] == {
        "requested": "EUR",
        "captured": "USD",
        "refund_id_reusable": True,
    }


def test_amazons_permanent_refusal_is_422_with_its_code_and_the_refund_failed(
    stack: EmbeddedStack, storefront: Storefront, capture: Capture
) -> None:
    capture_id = capture("30.00")
    body = refund_body(
        capture_id, "10.00", seller_refund_note='{"SandboxSimulation": {"State": "Completed"}}'
    )
    answer = storefront.post_refund(body)
    assert (answer.status, answer.error_code) == (422, "InvalidSandboxSimulationSpecified")
    refund = storefront.get_refund(body["refund_id"]).body
    assert (refund["status"], refund["reason_code"]) == ("Failed", "InvalidSandboxSimulationSpecified")
    assert storefront.get_capture(capture_id).body["available"] == "30.00"  # nothing stays reserved
    assert [e["detail-type"] for e in stack.events(body["refund_id"])] == [
        "Refund Requested",
        "Refund Failed",
    ]


def test_a_body_that_is_not_json_is_400_malformed_request(storefront: Storefront) -> None:
    answer = storefront.request(
        "POST", "/refunds", data=b'{"refund_id": "x",', headers={"Content-Type": "application/json"}
    )
    assert (answer.status, answer.error_code) == (400, "MalformedRequest")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "12.345"}, "amount"),
        ({"amount": "100.5", "currency_code": "JPY"}, "amount"),
        ({"refund_id": "ord_1001"}, "refund_id"),
        ({"refund_id": "x" * 29}, "refund_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_an_invalid_field_is_422_validation_error_naming_it(
    storefront: Storefront, capture: Capture, change: dict[str, str], field: str
) -> None:
    answer = storefront.post_refund({**refund_body(capture()), **change})
    assert (answer.status, answer.error_code) == (422, "ValidationError"), answer.body
    assert field in {detail["field"] for detail in answer.body["error"]["details"]}
    assert field in answer.body["error"]["message"]


def test_yen_without_decimals_is_accepted(storefront: Storefront, capture: Capture) -> None:
    answer = storefront.post_refund(refund_body(capture("5000", "JPY"), "1200", "JPY"))
    assert answer.status == 202, answer.body
    assert (answer.body["amount"], answer.body["currency_code"]) == ("1200", "JPY")


@pytest.mark.parametrize("key", [None, "not-the-key"])
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/refunds"), ("GET", "/refunds/ord-1-r1"), ("GET", "/captures/S01-1-1-C1")]
)
def test_without_the_api_key_or_with_a_wrong_one_is_403_in_the_apis_error_shape(
    stack: EmbeddedStack, key: str | None, method: str, path: str
) -> None:
    """Signed by the storefront (IAM authorization passes), but the usage plan's key is missing or wrong."""
    signer = stack.callers["storefront"].credentials
    answer = Storefront(stack.api_url, key, credentials=signer).request(method, path, json={"refund_id": "r"})
    assert (answer.status, answer.body) == (403, GATEWAY_FORBIDDEN)


def test_get_refund_is_200_with_the_refund_and_404_for_an_unknown_one(
    storefront: Storefront, capture: Capture
) -> None:
    body = refund_body(capture())
    created = storefront.post_refund(body).body
    read = storefront.get_refund(body["refund_id"])
    assert read.status == 200
    assert read.body["attempts"] == created["attempts"]
    missing = storefront.get_refund(new_refund_id("nobody"))
    assert (missing.status, missing.error_code) == (404, "RefundNotFound")


def test_get_capture_is_200_with_the_ledger_and_404_before_any_refund(
    storefront: Storefront, capture: Capture
) -> None:
    capture_id = capture("80.00")
    untouched = storefront.get_capture(capture_id)
    assert (untouched.status, untouched.error_code) == (404, "CaptureNotFound")
    body = refund_body(capture_id, "30.00")
    storefront.post_refund(body)
    ledger = storefront.get_capture(capture_id).body
    assert (ledger["captured"], ledger["in_flight"], ledger["completed"]) == ("80.00", "30.00", "0.00")
    assert (ledger["external"], ledger["available"]) == ("0.00", "50.00")
    assert [r["refund_id"] for r in ledger["refunds"]] == [body["refund_id"]]


def test_resolving_a_refund_that_is_not_manual_action_required_is_409(
    storefront: Storefront, operator: Storefront, capture: Capture
) -> None:
    body = refund_body(capture())
    storefront.post_refund(body)
    answer = operator.resolve(body["refund_id"], "gift_card", "sent a gift card")
    assert (answer.status, answer.error_code) == (409, "InvalidRefundState")
    assert storefront.get_refund(body["refund_id"]).body["status"] == "Pending"


def test_an_amazon_rejected_refund_needs_manual_action_and_can_be_resolved(
    stack: EmbeddedStack, storefront: Storefront, operator: Storefront, capture: Capture
) -> None:
    note = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "AmazonRejected"}})
    body = refund_body(capture(), "10.00", seller_refund_note=note)
    assert storefront.post_refund(body).status == 202
    stack.simulator.settle(everything=True)
    refund = storefront.wait_for_status(body["refund_id"], {"ManualActionRequired"})
    assert (refund["status"], refund["reason_code"]) == ("ManualActionRequired", "AmazonRejected")
    resolved = operator.resolve(body["refund_id"], "gift_card", "sent a gift card")
    assert (resolved.status, resolved.body["status"]) == (200, "ResolvedOutOfBand")
    assert [e["detail-type"] for e in stack.events(body["refund_id"])] == [
        "Refund Requested",
        "Refund Pending",
        "Refund Declined",
        "Refund Requires Manual Action",
        "Refund Resolved Out Of Band",
    ]


def test_amazon_unreachable_still_accepts_the_refund_as_requested(
    stack: EmbeddedStack, storefront: Storefront, capture: Capture, simulator: SimulatorControl
) -> None:
    capture_id = capture("40.00")
    body = refund_body(capture_id, "10.00")
    simulator.fault("Refund", "503", count=4)  # every attempt the client makes within the request
    answer = storefront.post_refund(body)
    assert answer.status == 202, answer.body
    assert (answer.body["status"], answer.body["attempts"][0]["amazon_refund_id"]) == ("Requested", None)
    calls = amazon_refund_calls(simulator, body["refund_id"])
    assert [call["status"] for call in calls] == [503] * 4
    assert storefront.get_capture(capture_id).body["in_flight"] == "10.00"
    assert simulator.capture(capture_id)["refunds"] == []
    assert [e["detail-type"] for e in stack.events(body["refund_id"])] == ["Refund Requested"]


def test_a_refund_completes_through_amazons_signed_ipn_and_each_transition_is_published(
    stack: EmbeddedStack, storefront: Storefront, capture: Capture
) -> None:
    capture_id = capture("60.00")
    body = refund_body(capture_id, "60.00")
    assert storefront.post_refund(body).status == 202
    stack.simulator.settle(everything=True)
    refund = storefront.wait_for_status(body["refund_id"], {"Completed"})
    assert refund["status"] == "Completed"
    assert refund["attempts"][0]["state"] == "Completed"
    assert all(entry["cause"].startswith(("api:", "amazon:", "ipn:")) for entry in refund["history"])
    ledger = storefront.get_capture(capture_id).body
    assert (ledger["completed"], ledger["in_flight"], ledger["available"]) == ("60.00", "0.00", "0.00")
    events = stack.events(body["refund_id"])
    assert [e["detail-type"] for e in events] == ["Refund Requested", "Refund Pending", "Refund Completed"]
    assert [(e["detail"]["previous_status"], e["detail"]["status"]) for e in events[1:]] == [
        ("Requested", "Pending"),
        ("Pending", "Completed"),
    ]
    assert {e["source"] for e in events} == {"amazon-pay-refunds"}
