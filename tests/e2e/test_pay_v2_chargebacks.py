"""API v2 chargebacks over HTTP against the local stack (issue 14): a v2 `CHARGEBACK` IPN names the
chargeback and its charge permission, never the charge. It is recorded against the permission, and from
then on no ProcessingFailure retry is sent for a refund on any charge under it (Amazon's procedure: no retry
after a chargeback), even when the chargeback moved no money the service can see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from refunds_local.clients import Storefront
from refunds_local.stack import EmbeddedStack

from .conftest import TEMPLATE, new_refund_id
from .test_pay_v2_refunds import charge_at_amazon, create_charge, v2_calls

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

RETRY_DELAY_SECONDS = 8  # the RetryWorkflow's wait: the chargeback IPN arrives well within it


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    """Refunds settle when a test says so; the stream is pumped (the retry workflow starts on its own)."""
    with EmbeddedStack(
        port=0,
        sim_port=0,
        throttling=False,
        settle_seconds=3600,
        retry_delay_seconds=RETRY_DELAY_SECONDS,
        template_path=TEMPLATE,
    ) as running:
        yield running


def chargeback(stack: EmbeddedStack, charge_id: str, **body: str) -> dict[str, Any]:
    answer = requests.post(f"{stack.sim_url}/simulator/charges/{charge_id}/chargeback", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def ipn_answers(stack: EmbeddedStack, object_id: str) -> list[int]:
    deliveries = requests.get(f"{stack.sim_url}/simulator/ipn/deliveries", timeout=30).json()["deliveries"]
    return [d.get("status") for d in deliveries if d.get("amazon_refund_id") == object_id]


def processing_failure_refund(storefront: Storefront, charge_id: str) -> str:
    note = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "ProcessingFailure"}})
    refund_id = new_refund_id("v2cb")
    body = {
        "refund_id": refund_id,
        "amazon_charge_id": charge_id,
        "amount": "10.00",
        "currency_code": "USD",
        "seller_refund_note": note,
    }
    answer = storefront.post_refund(body)
    assert answer.status == 202, answer.body
    return refund_id


def create_refund_keys(stack: EmbeddedStack, refund_id: str) -> list[str]:
    return [str(c["idempotency_key"]) for c in v2_calls(stack)
            if c["method"] == "POST" and str(c["idempotency_key"]).startswith(f"{refund_id}_")]  # fmt: skip


def test_a_chargeback_ipn_during_the_wait_stops_the_processing_failure_retry(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    charge_id = create_charge(stack, "100.00")
    refund_id = processing_failure_refund(storefront, charge_id)
    stack.simulator.settle(everything=True)  # Declined ProcessingFailure: the retry workflow starts
    declined = storefront.wait_for_status(refund_id, {"RetryScheduled", "ManualActionRequired"})
    assert declined["status"] == "RetryScheduled", declined

    # During the workflow's wait: a chargeback on the charge's permission, no money moved (yet).
    created = chargeback(stack, charge_id)
    assert created["charge_permission_id"] == charge_at_amazon(stack, charge_id)["chargePermissionId"]

    refund = storefront.wait_for_status(refund_id, {"ManualActionRequired", "Pending"}, timeout=45)
    assert (refund["status"], refund["reason_code"]) == (
        "ManualActionRequired", f"Chargeback found: {created['chargeback_id']}",
    ), refund  # fmt: skip
    assert [(a["attempt"], a["state"]) for a in refund["attempts"]] == [(1, "Declined")]
    assert create_refund_keys(stack, refund_id) == [f"{refund_id}_1"]  # no second Create Refund
    assert ipn_answers(stack, created["chargeback_id"]) == [200]


def test_the_charge_shows_the_chargebacks_recorded_on_its_permission_and_a_new_refund_goes_on(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    charge_id = create_charge(stack, "60.00")
    first = storefront.post_refund(
        {"refund_id": new_refund_id("v2cb"), "amazon_charge_id": charge_id, "amount": "5.00",
         "currency_code": "USD"}
    )  # fmt: skip
    assert first.status == 202, first.body
    created = chargeback(stack, charge_id, amount="20.00")
    stack.simulator.wait_for_ipn_idle(timeout=30)
    assert ipn_answers(stack, created["chargeback_id"]) == [200]

    view = storefront.request("GET", f"/charges/{charge_id}").body
    assert view["charge_permission_id"] == created["charge_permission_id"]
    assert [c["chargeback_id"] for c in view["chargebacks"]] == [created["chargeback_id"]]
    # A new refund on the charge goes on (within what is available): the chargeback forbids retries only.
    second = storefront.post_refund(
        {"refund_id": new_refund_id("v2cb"), "amazon_charge_id": charge_id, "amount": "15.00",
         "currency_code": "USD"}
    )  # fmt: skip
    assert second.status == 202, second.body
    assert second.body["status"] == "Pending"
