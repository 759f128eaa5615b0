"""Issue 9 on the local stack (HTTP in, the simulator as Amazon): refunds that others make on a capture.

Amazon's official Python SDK (amazon-pay 2.7.1) plays "another system of the same seller" calling `Refund`
directly, with a RefundReferenceId that looks like one of ours; Amazon's own refunds (A-to-z claims) come
from the simulator's control API. Every refund Amazon reports on a capture is either ours (its reference
names an attempt of ours with the same AmazonRefundId, amount and capture) or external, and external ones
count against the capture however the service learns of them.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import requests
from amazon_pay import payment_request
from amazon_pay.client import AmazonPayClient

from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_SELLER_ID
from refunds_local.clients import SimulatorControl, Storefront
from refunds_local.stack import EmbeddedStack

from .conftest import refund_body

pytestmark = [
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
    pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning"),  # inside the SDK
]
Capture = Callable[..., str]


@pytest.fixture(autouse=True)
def _no_sdk_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payment_request.time, "sleep", lambda seconds: None)


def sellers_other_system(stack: EmbeddedStack) -> AmazonPayClient:
    """The seller's ERP: Amazon's official SDK with the seller's own keys, pointed at the simulator."""
    client = AmazonPayClient(
        mws_access_key=DEFAULT_ACCESS_KEY,
        mws_secret_key=DEFAULT_SECRET_KEY,
        merchant_id=DEFAULT_SELLER_ID,
        region="us",
        currency_code="USD",
        sandbox=True,
        handle_throttle=False,
    )
    client._mws_endpoint = (
        stack.mws_url
    )  # normally https://mws.amazonservices.com/OffAmazonPayments_Sandbox/...
    return client


def amazon_external_refund(
    stack: EmbeddedStack, capture_id: str, amount: str, refund_type: str, state: str = "Completed"
) -> dict[str, Any]:
    response = requests.post(
        f"{stack.sim_url}/simulator/captures/{capture_id}/external-refund",
        json={"amount": amount, "refund_type": refund_type, "state": state},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    refund: dict[str, Any] = response.json()
    return refund


def refund_calls(simulator: SimulatorControl, capture_id: str) -> list[dict[str, Any]]:
    """This service's Refund calls on the capture (the SDK's go to Amazon directly, not through the log)."""
    return [
        c
        for c in simulator.calls()
        if c["action"] == "Refund" and c["params"].get("AmazonCaptureId") == capture_id
    ]


def test_a_refund_of_the_sellers_other_system_named_like_ours_is_external(
    stack: EmbeddedStack, storefront: Storefront, simulator: SimulatorControl, capture: Capture
) -> None:
    capture_id = capture("30.00")
    ours = refund_body(capture_id, "10.00")
    assert storefront.post_refund(ours).status == 202
    stack.simulator.settle(everything=True)
    assert storefront.wait_for_status(ours["refund_id"], {"Completed"})["status"] == "Completed"

    erp = sellers_other_system(stack).refund(
        capture_id, f"{ours['refund_id']}_7", "15.00", seller_refund_note="ERP goodwill"
    )
    assert erp.success  # a new reference id: Amazon accepts it
    stack.simulator.wait_for_ipn_idle(10)  # its Pending IPN reached /ipn

    ledger = storefront.get_capture(capture_id).body
    assert (ledger["external"], ledger["available"]) == ("15.00", "5.00")
    [external] = ledger["external_refunds"]
    assert (external["amount"], external["refund_type"]) == ("15.00", "SellerInitiated")
    refund = storefront.get_refund(ours["refund_id"]).body
    assert [a["attempt"] for a in refund["attempts"]] == [1]
    assert "External Refund Detected" in [e["detail-type"] for e in stack.events()]

    calls_before = len(refund_calls(simulator, capture_id))
    answer = storefront.post_refund(refund_body(capture_id, "10.00"))
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert len(refund_calls(simulator, capture_id)) == calls_before


def test_a_refund_of_the_sellers_other_system_whose_ipn_was_lost_is_counted_before_the_next_refund(
    stack: EmbeddedStack, storefront: Storefront, simulator: SimulatorControl, capture: Capture
) -> None:
    capture_id = capture("30.00")
    ours = refund_body(capture_id, "10.00")
    assert storefront.post_refund(ours).status == 202
    stack.simulator.settle(everything=True)
    assert storefront.wait_for_status(ours["refund_id"], {"Completed"})["status"] == "Completed"

    simulator.ipn_fault("drop")
    assert sellers_other_system(stack).refund(capture_id, f"{ours['refund_id']}_7", "15.00").success
    stack.simulator.wait_for_ipn_idle(10)
    assert storefront.get_capture(capture_id).body["external"] == "0.00"  # nothing told the service

    calls_before = len(refund_calls(simulator, capture_id))
    later = refund_body(capture_id, "10.00")
    answer = storefront.post_refund(later)
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert len(refund_calls(simulator, capture_id)) == calls_before
    ledger = storefront.get_capture(capture_id).body
    assert (ledger["external"], ledger["available"]) == ("15.00", "5.00")
    assert storefront.get_refund(later["refund_id"]).body["status"] == "Failed"


def test_refunds_already_on_the_capture_when_the_ledger_opens_are_read_pending_ones_included(
    stack: EmbeddedStack, storefront: Storefront, simulator: SimulatorControl, capture: Capture
) -> None:
    capture_id = capture("100.00")
    amazon_external_refund(stack, capture_id, "50.00", "AmazonA-ZRefund", state="Pending")
    amazon_external_refund(stack, capture_id, "20.00", "SellerInitiated")

    answer = storefront.post_refund(refund_body(capture_id, "40.00"))  # 50 + 20 + 40 > 100
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture")
    assert refund_calls(simulator, capture_id) == []

    fits = refund_body(capture_id, "30.00")
    assert storefront.post_refund(fits).status == 202
    ledger = storefront.get_capture(capture_id).body
    assert (ledger["external"], ledger["in_flight"], ledger["available"]) == ("70.00", "30.00", "0.00")
    recorded = sorted((e["refund_type"], e["amount"]) for e in ledger["external_refunds"])
    assert recorded == [("AmazonA-ZRefund", "50.00"), ("SellerInitiated", "20.00")]
    at_amazon = simulator.capture(capture_id)["refunds"]
    assert sum(Decimal(r["amount"]) for r in at_amazon) == Decimal("100.00")
