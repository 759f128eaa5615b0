"""Bugs the simulation found, reduced to minimal reproductions; fixed by the headroom check that
`use_cases.submission.submit_attempt` makes before every Refund call (Amazon's IdList against the ledger).

Both break CONTRACT §7.1 at Amazon: a capture refunded beyond what was captured, without the deployment
enabling Amazon's over-refund allowance. Amazon itself accepts up to +15% (max 75 USD), so only the ledger
stands between a refund request and an over-refund, and the ledger learns of external refunds (A-to-z,
chargeback, Seller Central) only from their IPN, and only when it can place them.
Found with `python -m tests.simulation --seeds N --stale-externals` (see the report in tests/simulation).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from moto import mock_aws

from amazon_pay_refunds.core.models import PaymentApi, RefundStatus, qualified_id
from amazon_pay_refunds.use_cases.errors import AmazonRefused
from amazon_pay_refunds.use_cases.refund_requests import RefundRequest

from .world import World


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        simulated = World(1, lambda line: None, settle_seconds=60)
        simulated.chaos.enabled = False
        yield simulated


def request(world: World, refund_id: str, capture: str, amount: str) -> RefundStatus:
    try:
        outcome = world.requests.request_refund(
            RefundRequest(refund_id, capture, Decimal(amount), "USD", seller_refund_note="Returned item"),
            deadline=world.clock.monotonic() + 20,
        )
    except AmazonRefused as refused:  # answered 422; the refund is stored Failed
        assert refused.refund is not None
        return refused.refund.status
    return outcome.refund.status


def deliver_all(world: World) -> list[int]:
    answers = [world.deliver(ipn) for ipn in world.outbox]
    world.outbox.clear()
    return answers


def amazon_refunded(world: World, capture: str) -> Decimal:
    market = world.simulator.market
    return market.committed_total(market.captures[capture])


def test_refund_requested_before_an_a_to_z_ipn_arrives_cannot_overdraw(world: World) -> None:
    capture = world.simulator.create_capture("60.00", "USD")
    assert request(world, "first", capture, "52.93") is RefundStatus.PENDING
    world.simulator.external_refund(capture, "4.28", "AmazonA-ZRefund")  # its IPN is still on its way
    # 52.93 + 4.28 + 5.47 = 62.68 > 60.00: Amazon's IdList shows the A-to-z refund before ours is sent.
    assert request(world, "second", capture, "5.47") is RefundStatus.FAILED
    deliver_all(world)
    assert amazon_refunded(world, capture) <= Decimal("60.00")


def test_a_to_z_refund_after_our_refunds_completed_is_counted(world: World) -> None:
    capture = world.simulator.create_capture("60.00", "USD")
    assert request(world, "first", capture, "50.00") is RefundStatus.PENDING
    world.clock.advance(120)
    world.simulator.settle()
    deliver_all(world)
    assert world.inspect.get_refund("first").status is RefundStatus.COMPLETED  # type: ignore[union-attr]
    world.simulator.external_refund(capture, "9.00", "AmazonA-ZRefund")
    assert deliver_all(world) == [200]  # acknowledged: external_refund_unmatched
    # The ledger still shows 10.00 available, but Amazon's IdList shows the A-to-z refund: 50 + 9 + 9 > 60.
    assert request(world, "second", capture, "9.00") is RefundStatus.FAILED
    assert amazon_refunded(world, capture) <= Decimal("60.00")


def test_a_v2_refund_made_while_its_answer_was_lost_is_completed_not_failed(world: World) -> None:
    """Seed 93: Create Refund accepted, every answer unreadable; the refund settled at Amazon. The
    reconciler's resend read Get Charge's refundedAmount, took our own refund for someone else's and
    stored the refund Failed (RefundExceedsCapture) while Amazon had refunded the buyer."""
    charge_id = world.simulator.create_charge("100.00", "USD")
    world.simulator.add_fault("CreateRefund", "accept-then-unreadable", 6)
    outcome = world.requests.request_refund(
        RefundRequest("rf-lost", charge_id, Decimal("94.50"), "USD", api=PaymentApi.V2),
        deadline=world.clock.monotonic() + 20,
    )
    assert outcome.refund.status is RefundStatus.REQUESTED  # the outcome is unknown
    world.simulator.clear_faults()
    world.clock.advance(400)
    world.simulator.settle()
    assert [r.state for r in world.simulator.pay_v2.refunds.values()] == ["Refunded"]
    world.reconciler.run(deadline=world.clock.monotonic() + 55, limit=25)
    deliver_all(world)
    refund = world.inspect.get_refund("rf-lost")
    assert refund is not None and refund.status is RefundStatus.COMPLETED
    ledger = world.inspect.get_ledger(qualified_id(PaymentApi.V2, charge_id))
    assert ledger is not None and (ledger.completed, ledger.external) == (Decimal("94.50"), Decimal(0))


def test_a_v2_refund_by_others_after_the_ledger_opened_is_counted_before_a_new_refund(world: World) -> None:
    """The headroom check before a new refund's first Create Refund took that very attempt for one that
    might already be at Amazon (sent, unanswered), so 20.00 refunded by others stayed unexplained: Amazon
    (whose cap allows 15 % over) refunded 55.00 on a 50.00 charge."""
    charge_id = world.simulator.create_charge("50.00", "USD")

    def v2(refund_id: str, amount: str) -> RefundStatus:
        try:
            outcome = world.requests.request_refund(
                RefundRequest(refund_id, charge_id, Decimal(amount), "USD", api=PaymentApi.V2),
                deadline=world.clock.monotonic() + 20,
            )
        except AmazonRefused as refused:
            assert refused.refund is not None
            return refused.refund.status
        return outcome.refund.status

    assert v2("first", "10.00") is RefundStatus.PENDING
    world.simulator.charge_external_refund(charge_id, "20.00")
    assert v2("second", "25.00") is RefundStatus.FAILED
    deliver_all(world)
    charge = world.simulator.pay_v2.charges[charge_id]
    made = sum(
        (r.amount for r in world.simulator.pay_v2.refunds.values() if r.charge_id == charge_id), Decimal(0)
    )
    assert made <= charge.amount, f"{made} refunded on a {charge.amount} charge"
