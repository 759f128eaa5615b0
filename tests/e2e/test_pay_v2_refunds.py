"""Amazon Pay API v2 refunds beside v1 ones, over HTTP against the local stack (issue 14): the storefront
names a charge (`amazon_charge_id`), the service calls the simulator's v2 side (signed with the stack's v2
key), and the simulator's signed v2 IPN (no state) makes the IPN handler read the refund with Get Refund.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.deadlines import deadline_in
from refunds_local.clients import SimulatorControl, Storefront
from refunds_local.stack import EmbeddedStack

from .conftest import new_refund_id

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def create_charge(
    stack: EmbeddedStack, amount: str, currency_code: str = "USD", state: str = "Captured"
) -> str:
    answer = requests.post(
        f"{stack.sim_url}/simulator/charges",
        json={"amount": amount, "currency_code": currency_code, "state": state},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["amazon_charge_id"])


def charge_at_amazon(stack: EmbeddedStack, charge_id: str) -> dict[str, Any]:
    view: dict[str, Any] = requests.get(f"{stack.sim_url}/simulator/charges/{charge_id}", timeout=30).json()
    return view


def v2_calls(stack: EmbeddedStack) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = requests.get(f"{stack.sim_url}/simulator/v2/calls", timeout=30).json()[
        "calls"
    ]
    return calls


def v2_body(charge_id: str, amount: str = "12.50", **extra: Any) -> dict[str, Any]:
    return {
        "refund_id": new_refund_id("v2"),
        "amazon_charge_id": charge_id,
        "amount": amount,
        "currency_code": "USD",
        **extra,
    }


def test_a_v2_refund_goes_to_completed_through_a_signed_v2_ipn_and_get_refund(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    charge_id = create_charge(stack, "100.00")
    body = v2_body(charge_id, "12.50")
    answer = storefront.post_refund(body)
    assert answer.status == 202, answer.body
    refund = answer.body
    assert (refund["amazon_charge_id"], refund["amazon_capture_id"]) == (charge_id, None)
    assert refund["status"] == "Pending"
    [attempt] = refund["attempts"]
    assert attempt["refund_reference_id"] == f"{body['refund_id']}_1"
    # The idempotency key of attempt 1 is its RefundReferenceId, signed into the Create Refund call.
    [create] = [c for c in v2_calls(stack) if c["method"] == "POST" and c["path"].endswith("/refunds")
                and c["idempotency_key"] == f"{body['refund_id']}_1"]  # fmt: skip
    assert create["status"] == 201 and "x-amz-pay-idempotency-key" in create["signed_headers"]

    stack.simulator.settle(everything=True)  # Refunded at Amazon: a v2 IPN (no state) is posted to /ipn
    done = storefront.wait_for_status(body["refund_id"], {"Completed"})
    assert done["status"] == "Completed", done
    assert done["attempts"][0]["amazon_refund_id"] == attempt["amazon_refund_id"]
    assert done["history"][-1]["cause"].startswith("ipn:")
    reads = [c for c in v2_calls(stack) if c["method"] == "GET" and attempt["amazon_refund_id"] in c["path"]]
    assert reads and all(c["status"] == 200 for c in reads)

    ledger = storefront.request("GET", f"/charges/{charge_id}")
    assert ledger.status == 200, ledger.body
    assert (ledger.body["amazon_charge_id"], ledger.body["completed"], ledger.body["available"]) == (
        charge_id, "12.50", "87.50",
    )  # fmt: skip
    assert storefront.get_capture(charge_id).status == 404  # a capture with the same id has no ledger
    events = stack.events(body["refund_id"])
    assert [e["detail-type"] for e in events] == ["Refund Requested", "Refund Pending", "Refund Completed"]
    assert all(e["detail"]["amazon_charge_id"] == charge_id for e in events)


def test_a_repeated_v2_request_replays_and_creates_no_second_refund(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    charge_id = create_charge(stack, "50.00")
    body = v2_body(charge_id, "5.00")
    first, again = storefront.post_refund(body), storefront.post_refund(body)
    assert (first.status, again.status) == (202, 200)
    assert len(charge_at_amazon(stack, charge_id)["refunds"]) == 1


def test_a_v2_over_refund_is_refused_and_nothing_is_sent(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    charge_id = create_charge(stack, "20.00")
    first = storefront.post_refund(v2_body(charge_id, "15.00"))
    assert first.status == 202, first.body
    answer = storefront.post_refund(v2_body(charge_id, "10.00"))
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture"), answer.body
    assert len(charge_at_amazon(stack, charge_id)["refunds"]) == 1


def test_a_charge_refunded_by_others_before_opens_its_ledger_with_that_amount_as_external(
    stack: EmbeddedStack, storefront: Storefront, simulator: SimulatorControl
) -> None:
    charge_id = create_charge(stack, "30.00")
    requests.post(
        f"{stack.sim_url}/simulator/charges/{charge_id}/external-refund", json={"amount": "25.00"}, timeout=30
    ).raise_for_status()
    assert storefront.post_refund(v2_body(charge_id, "5.01")).error_code == "RefundExceedsCapture"
    assert storefront.post_refund(v2_body(charge_id, "5.00")).status == 202
    ledger = storefront.request("GET", f"/charges/{charge_id}").body
    assert (ledger["external"], ledger["in_flight"], ledger["available"]) == ("25.00", "5.00", "0.00")
    assert [(e["refund_type"], e["amount"]) for e in ledger["external_refunds"]] == [("Untyped", "25.00")]


def test_an_amazon_rejected_v2_refund_needs_manual_action(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    charge_id = create_charge(stack, "40.00")
    note = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "AmazonRejected"}})
    body = v2_body(charge_id, "10.00", seller_refund_note=note)
    assert storefront.post_refund(body).status == 202
    stack.simulator.settle(everything=True)
    refund = storefront.wait_for_status(body["refund_id"], {"ManualActionRequired"})
    assert (refund["status"], refund["reason_code"]) == ("ManualActionRequired", "AmazonRejected")


def test_a_v2_refund_declined_once_with_processing_failure_completes_on_the_retry(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    """The simulator's ProcessingFailure;Times=1 (its own extension) declines attempt 1 only: the
    RetryWorkflow sends attempt 2 under its own idempotency key, and Amazon refunds it."""
    charge_id = create_charge(stack, "60.00")
    spec = {"State": "Declined", "ReasonCode": "ProcessingFailure", "Times": 1}
    body = v2_body(charge_id, "20.00", seller_refund_note=json.dumps({"SandboxSimulation": spec}))
    refund_id = body["refund_id"]
    assert storefront.post_refund(body).status == 202

    stack.simulator.settle(everything=True)  # attempt 1 Declined: the v2 IPN, then Get Refund
    declined = storefront.wait_for_status(refund_id, {"RetryScheduled"})
    assert declined["status"] == "RetryScheduled", declined
    stack.drain()  # Refund Declined on the bus: the RetryStarter starts the RetryWorkflow
    deadline = time.monotonic() + 30
    while len(storefront.get_refund(refund_id).body["attempts"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the workflow's short wait, the eligibility checks, then attempt 2's Create Refund
    stack.simulator.settle(everything=True)  # attempt 2 Refunded

    done = storefront.wait_for_status(refund_id, {"Completed"}, timeout=30)
    assert done["status"] == "Completed", done
    assert [(a["refund_reference_id"], a["state"], a["reason_code"]) for a in done["attempts"]] == [
        (f"{refund_id}_1", "Declined", "ProcessingFailure"),
        (f"{refund_id}_2", "Completed", None),
    ]
    creates = [c for c in v2_calls(stack) if c["method"] == "POST" and c["path"].endswith("/refunds")
               and str(c["idempotency_key"]).startswith(f"{refund_id}_")]  # fmt: skip
    assert [(c["idempotency_key"], c["status"], c["simulation_code"]) for c in creates] == [
        (f"{refund_id}_1", 201, "ProcessingFailure;Times=1"),
        (f"{refund_id}_2", 201, "ProcessingFailure;Times=1"),
    ]
    states = [r["statusDetails"]["state"] for r in charge_at_amazon(stack, charge_id)["refunds"]]
    assert states == ["Declined", "Refunded"]
    ledger = storefront.request("GET", f"/charges/{charge_id}").body
    assert (ledger["completed"], ledger["available"]) == ("20.00", "40.00")


@pytest.mark.parametrize(
    ("extra", "fields"),
    [
        ({"amazon_capture_id": "S01-1234567-1234567-C000001"}, "both"),
        ({}, "neither"),
    ],
)
def test_both_or_neither_id_is_a_validation_error_and_stores_nothing(
    storefront: Storefront, extra: dict[str, str], fields: str
) -> None:
    body: dict[str, Any] = {
        "refund_id": new_refund_id("v2"),
        "amount": "1.00",
        "currency_code": "USD",
        **extra,
    }
    if fields == "both":
        body["amazon_charge_id"] = "S01-1234567-1234567-C000002"
    answer = storefront.post_refund(body)
    assert (answer.status, answer.error_code) == (422, "ValidationError"), answer.body
    assert "amazon_charge_id" in answer.body["error"]["message"] + json.dumps(answer.body["error"]["details"])
    assert storefront.get_refund(body["refund_id"]).status == 404


def test_a_charge_refunded_by_others_after_its_ledger_opened_leaves_no_room_for_an_overdraw(
    stack: EmbeddedStack, storefront: Storefront
) -> None:
    """The headroom check before the first Create Refund of a new refund: its attempt was never sent, so it
    cannot be what Get Charge's refundedAmount holds, and the 20.00 refunded by others is recorded first.
    (Taking the new attempt for one that might be at Amazon left 15.00 of room and Amazon, whose cap allows
    15 % over the charge, made the 25.00: 55.00 refunded on a 50.00 charge.)"""
    charge_id = create_charge(stack, "50.00")
    assert storefront.post_refund(v2_body(charge_id, "10.00")).status == 202
    requests.post(
        f"{stack.sim_url}/simulator/charges/{charge_id}/external-refund", json={"amount": "20.00"}, timeout=30
    ).raise_for_status()
    answer = storefront.post_refund(v2_body(charge_id, "25.00"))
    assert (answer.status, answer.error_code) == (422, "RefundExceedsCapture"), answer.body
    ledger = storefront.request("GET", f"/charges/{charge_id}").body
    assert (ledger["external"], ledger["available"]) == ("20.00", "20.00"), ledger
    assert storefront.post_refund(v2_body(charge_id, "20.00")).status == 202


def test_a_charge_in_another_currency_is_refused(stack: EmbeddedStack, storefront: Storefront) -> None:
    charge_id = create_charge(stack, "40.00", "EUR")
    answer = storefront.post_refund(v2_body(charge_id, "10.00"))
    assert (answer.status, answer.error_code) == (422, "CurrencyMismatch"), answer.body


def test_amazons_transaction_amount_exceeded_fails_the_refund_with_422_not_500(
    stack: EmbeddedStack, storefront: Storefront, simulator: SimulatorControl
) -> None:
    """Another refund Amazon has not settled yet, whose IPN is lost, is not in Get Charge's refundedAmount,
    so the ledger lets ours through and Amazon's own cap refuses it: the refund is Failed, its reservation
    released. (With its IPN the ledger counts it and refuses ours itself: test_pay_v2_refunds_by_others.)"""
    charge_id = create_charge(stack, "20.00")
    simulator.ipn_fault("drop")
    requests.post(
        f"{stack.sim_url}/simulator/charges/{charge_id}/external-refund",
        json={"amount": "15.00", "state": "RefundInitiated"},
        timeout=30,
    ).raise_for_status()
    body = v2_body(charge_id, "10.00")
    answer = storefront.post_refund(body)
    assert (answer.status, answer.error_code) == (422, "TransactionAmountExceeded"), answer.body
    assert storefront.get_refund(body["refund_id"]).body["status"] == "Failed"
    ledger = storefront.request("GET", f"/charges/{charge_id}").body
    assert (ledger["in_flight"], ledger["available"]) == ("0.00", "20.00")


def test_the_reconciler_submits_and_polls_v2_refunds_through_the_same_port(
    stack: EmbeddedStack, storefront: Storefront, simulator: SimulatorControl
) -> None:
    """A v2 refund Amazon could not be asked about (Create Refund 503) is submitted later with the same
    idempotency key; one whose IPN was lost is read with Get Refund; both by ReconcilerFunction's role."""
    unreachable = v2_body(create_charge(stack, "40.00"), "10.00")
    simulator.fault("CreateRefund", "503", count=4)
    assert storefront.post_refund(unreachable).body["status"] == "Requested"
    lost = v2_body(create_charge(stack, "40.00"), "15.00")
    assert storefront.post_refund(lost).body["status"] == "Pending"
    stack.simulator.wait_for_ipn_idle(10)
    stack.simulator.set_ipn_url(None)  # the Refunded IPN is lost
    try:
        stack.simulator.settle(everything=True)
    finally:
        stack.simulator.set_ipn_url(f"{stack.api_url}/ipn")

    def reconciles_later(event: dict[str, Any], context: Any) -> dict[str, Any]:
        reconciler = lambda_services(now=lambda: datetime.now(UTC) + timedelta(minutes=10)).reconciler()
        report: dict[str, Any] = reconciler.run(deadline=deadline_in(20), limit=25).to_dict()
        return report

    function = stack.function("ReconcilerFunction")
    function.override(reconciles_later)
    try:
        report = function.invoke({})
    finally:
        function.override(None)
    assert report["submitted"] >= 1 and report["polled"] >= 1, report
    assert storefront.get_refund(lost["refund_id"]).body["status"] == "Completed"
    submitted = storefront.get_refund(unreachable["refund_id"]).body
    assert submitted["status"] == "Pending" and submitted["attempts"][0]["amazon_refund_id"]
    created = [c for c in v2_calls(stack) if c["idempotency_key"] == f"{unreachable['refund_id']}_1"]
    assert [c["status"] for c in created] == [503, 503, 503, 503, 201]
