"""Issue 9 on the local stack: no ProcessingFailure retry when Amazon's records show an A-to-z or chargeback
refund on the capture, however the service learned of it — here from the capture's refunds that were
already there when its ledger opened (refunds the service never had an IPN for)."""

from __future__ import annotations

import pytest
import requests

from refunds_local.stack import EmbeddedStack

from .support import (
    amazon_refunds_on,
    detail_types,
    executions_of,
    finished_execution,
    processing_failure_note,
    request_refund,
    wait_for_status,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def amazon_external_refund(stack: EmbeddedStack, capture_id: str, amount: str, refund_type: str) -> None:
    response = requests.post(
        f"{stack.sim_url}/simulator/captures/{capture_id}/external-refund",
        json={"amount": amount, "refund_type": refund_type},
        timeout=10,
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "before",
    [
        [("5.00", "AmazonA-ZRefund")],
        [("6.00", "SellerInitiated"), ("4.00", "AmazonA-ZRefund")],
        [("3.00", "Chargeback")],
    ],
    ids=["a-to-z", "seller-then-a-to-z", "chargeback"],
)
def test_a_refund_made_before_the_ledger_opened_stops_the_retry(
    stack: EmbeddedStack, before: list[tuple[str, str]]
) -> None:
    refund_id = f"pf-before-{len(before)}-{before[-1][1][:6]}"
    capture_id = stack.simulator.create_capture("40.00", "USD")
    for amount, refund_type in before:
        amazon_external_refund(stack, capture_id, amount, refund_type)
    request_refund(stack, refund_id, capture_id, processing_failure_note())

    refund = wait_for_status(stack, refund_id, "ManualActionRequired")
    finished_execution(stack, f"{refund_id}-attempt-1")

    assert [a["attempt"] for a in refund["attempts"]] == [1]
    refund_type = before[-1][1]
    [claim] = [r for r in amazon_refunds_on(stack, capture_id) if r["refund_type"] == refund_type]
    reason = "Chargeback found" if refund_type == "Chargeback" else "AmazonA-ZRefund found"
    assert refund["reason_code"] == f"{reason}: {claim['amazon_refund_id']}"  # names the refund
    assert f"{refund_id}_2" not in {r["refund_reference_id"] for r in amazon_refunds_on(stack, capture_id)}
    assert [e["name"] for e in executions_of(stack, refund_id)] == [f"{refund_id}-attempt-1"]
    assert detail_types(stack, refund_id)[-1] == "Refund Requires Manual Action"
