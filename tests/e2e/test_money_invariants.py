"""CONTRACT §7 over HTTP: parallel requests cannot overdraw a capture; a crash mid-request loses no refund and
the reconciler's `submit_requested` then finishes it with exactly one Amazon refund."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from amazon_pay_refunds.adapters.mws.client import deadline_in
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.use_cases.submission import FaultPoint
from refunds_local.clients import Answer, SimulatorControl, Storefront, storefront_of
from refunds_local.stack import EmbeddedStack

from .conftest import refund_body

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
Capture = Callable[..., str]


def test_parallel_requests_on_one_capture_never_refund_more_than_was_captured(
    stack: EmbeddedStack, capture: Capture
) -> None:
    """Every request gets a definite answer and the ledger stays whole: the 20 requests run at once, each in
    an execution environment of its own, against the one table (the reservation's atomicity)."""
    capture_id = capture("100.00")
    bodies = [refund_body(capture_id, "12.00") for _ in range(20)]  # 240.00 asked of 100.00

    def post(body: dict[str, Any]) -> Answer:
        return storefront_of(stack).post_refund(body)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, bodies))
    assert {a.status for a in answers} <= {202, 422}, [a.body for a in answers]
    refused = [a for a in answers if a.status == 422]
    assert {a.error_code for a in refused} == {"RefundExceedsCapture"}
    accepted = [body["refund_id"] for body, a in zip(bodies, answers, strict=True) if a.status == 202]
    assert len(accepted) == 8  # 8 x 12.00 = 96.00; a ninth would overdraw

    client = storefront_of(stack)
    for refund_id in accepted:
        stored = client.get_refund(refund_id)
        assert (stored.status, stored.body["status"]) == (200, "Pending")
    ledger = client.get_capture(capture_id).body
    assert sorted(r["refund_id"] for r in ledger["refunds"]) == sorted(accepted)
    reserved = Decimal(ledger["in_flight"]) + Decimal(ledger["completed"])
    assert reserved == Decimal("96.00")
    assert Decimal(ledger["available"]) == Decimal(ledger["captured"]) - reserved - Decimal(
        ledger["external"]
    )
    at_amazon = SimulatorControl(stack.sim_url).capture(capture_id)["refunds"]
    assert sum(Decimal(r["amount"]) for r in at_amazon) == Decimal("96.00")


@pytest.fixture
def crash_at(stack: EmbeddedStack) -> Iterator[Callable[[FaultPoint], None]]:
    """Make the deployed RefundApi handler's service crash at a named point (its fault hook), in the
    function's environments (crashing_refund_api.py)."""
    function = stack.function("RefundApiFunction")

    def crashing(where: FaultPoint) -> None:
        function.override(f"tests.e2e.crashing_refund_api.{where}")

    yield crashing
    function.override(None)


@pytest.mark.parametrize("point", ["after_reservation", "after_amazon_answer"])
def test_a_crash_mid_request_leaves_a_requested_refund_that_the_reconciler_finishes_once(
    stack: EmbeddedStack,
    storefront: Storefront,
    simulator: SimulatorControl,
    capture: Capture,
    crash_at: Callable[[FaultPoint], None],
    point: FaultPoint,
) -> None:
    capture_id = capture("50.00")
    body = refund_body(capture_id, "20.00")
    refund_id = body["refund_id"]
    crash_at(point)
    simulator.ipn_fault("drop")  # Amazon's Pending IPN is lost too, else it alone would move the refund on
    crashed = storefront.post_refund(body)
    assert (crashed.status, crashed.error_code) == (500, "InternalError")
    stack.simulator.wait_for_ipn_idle(10)

    refund = storefront.get_refund(refund_id).body
    assert refund["status"] == "Requested"
    assert refund["history"] == [
        {
            "at": refund["created_at"],
            "from": None,
            "to": "Requested",
            "cause": "api:POST /refunds",
            "caller": stack.callers["storefront"].arn,
        }
    ]
    assert storefront.get_capture(capture_id).body["in_flight"] == "20.00"
    made_before = simulator.capture(capture_id)["refunds"]
    assert len(made_before) == (1 if point == "after_amazon_answer" else 0)

    finished = lambda_services().refund_requests().submit_requested(refund_id, deadline=deadline_in(10))
    assert finished.status.value == "Pending"
    [at_amazon] = simulator.capture(capture_id)["refunds"]
    assert at_amazon["refund_reference_id"] == f"{refund_id}_1"
    assert finished.latest_attempt.amazon_refund_id == at_amazon["amazon_refund_id"]
    again = lambda_services().refund_requests().submit_requested(refund_id, deadline=deadline_in(10))
    assert again.status.value == "Pending"
    assert len(simulator.capture(capture_id)["refunds"]) == 1

    refund = storefront.get_refund(refund_id).body
    assert [(h["from"], h["to"]) for h in refund["history"]] == [
        (None, "Requested"),
        ("Requested", "Pending"),
    ]
    assert storefront.get_capture(capture_id).body["in_flight"] == "20.00"
    assert [e["detail-type"] for e in stack.events(refund_id)] == ["Refund Requested", "Refund Pending"]
