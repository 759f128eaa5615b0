"""Refunds others make on an Amazon Pay v2 charge while Amazon still has them `RefundInitiated`, over HTTP
against the local stack: the simulator's signed v2 IPN (no state) makes the IPN handler read the refund with
Get Refund, find its charge, and record it on the charge's ledger by its refund id, so it counts at once.
Get Charge's refundedAmount leaves such a refund out until it is `Refunded`, so without its IPN the service
could not count it (and Amazon's own cap allows 15 % more than was charged).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from refunds_local.clients import Storefront
from refunds_local.stack import EmbeddedStack

from .test_pay_v2_refunds import create_charge, v2_body, v2_calls

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def refund_by_others(stack: EmbeddedStack, charge_id: str, amount: str, **extra: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{stack.sim_url}/simulator/charges/{charge_id}/external-refund",
        json={"amount": amount, "state": "RefundInitiated", **extra},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    stack.simulator.wait_for_ipn_idle(10)  # its v2 IPN reached /ipn and was answered
    refund: dict[str, Any] = answer.json()
    return refund


def create_refund_calls(stack: EmbeddedStack, refund_id: str) -> list[dict[str, Any]]:
    return [c for c in v2_calls(stack) if str(c["idempotency_key"]).startswith(f"{refund_id}_")]


def external_entries(storefront: Storefront, charge_id: str) -> list[tuple[str, str, str | None]]:
    ledger = storefront.request("GET", f"/charges/{charge_id}").body
    return [(e["amazon_refund_id"], e["amount"], e["state"]) for e in ledger["external_refunds"]]


def test_a_pending_refund_by_others_is_counted_before_our_refund_and_once_when_it_settles(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    charge_id = create_charge(stack, "50.00")
    theirs = refund_by_others(stack, charge_id, "30.00")

    # 30 + 25 > 50: refused before any Create Refund (Amazon's cap, 50 + 7.50, would have let it through).
    too_much = v2_body(charge_id, "25.00")
    answer = storefront.post_refund(too_much)
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture"), answer.body
    assert create_refund_calls(stack, too_much["refund_id"]) == []
    assert external_entries(storefront, charge_id) == [(theirs["refundId"], "30.00", "Pending")]

    stack.simulator.settle(everything=True)  # Refunded: now in Get Charge's refundedAmount too
    stack.simulator.wait_for_ipn_idle(10)
    assert external_entries(storefront, charge_id) == [(theirs["refundId"], "30.00", "Completed")]
    fits = v2_body(charge_id, "20.00")  # counted once, not again through refundedAmount
    assert storefront.post_refund(fits).status == 202
    ledger = storefront.request("GET", f"/charges/{charge_id}").body
    assert (ledger["external"], ledger["in_flight"], ledger["available"]) == ("30.00", "20.00", "0.00")
    assert len(ledger["external_refunds"]) == 1


def test_a_refund_by_others_that_amazon_declines_is_counted_until_then_and_released_after(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    """Counted while Amazon still processes it (Amazon's cap counts it too); declined, it moved no money,
    so the buyer's later refund is not blocked by a refund that never happened."""
    charge_id = create_charge(stack, "50.00")
    theirs = refund_by_others(stack, charge_id, "30.00", decline_reason="AmazonRejected")
    stack.simulator.wait_for_ipn_idle(10)
    assert external_entries(storefront, charge_id) == [(theirs["refundId"], "30.00", "Pending")]
    refused = storefront.post_refund(v2_body(charge_id, "25.00"))
    assert (refused.status, refused.error_code) == (422, "RefundExceedsCapture"), refused.body

    stack.simulator.settle(everything=True)  # Declined
    stack.simulator.wait_for_ipn_idle(10)

    assert external_entries(storefront, charge_id) == [(theirs["refundId"], "30.00", "Declined")]
    ledger = storefront.request("GET", f"/charges/{charge_id}").body
    assert (ledger["external"], ledger["available"]) == ("0.00", "50.00"), ledger
    answer = storefront.post_refund(v2_body(charge_id, "25.00"))
    assert answer.status == 202, answer.body
