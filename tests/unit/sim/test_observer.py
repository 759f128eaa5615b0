"""Every refund state change goes through one place and reaches the observers (the future IPN sender)."""

from __future__ import annotations

from amazon_pay_sim import RefundChange, Simulator
from tests.support.sim import FakeClock, call, refund_params


def changes_of(sim: Simulator) -> list[RefundChange]:
    seen: list[RefundChange] = []
    sim.on_refund_change(seen.append)
    return seen


def test_a_new_refund_is_reported_pending(sim: Simulator, clock: FakeClock) -> None:
    seen = changes_of(sim)
    call(sim, clock, "Refund", refund_params(sim.create_capture("100.00", "USD"), "r1"))
    assert [(c.previous_state, c.refund.state) for c in seen] == [(None, "Pending")]


def test_settling_reports_the_final_state_once(sim: Simulator, clock: FakeClock) -> None:
    seen = changes_of(sim)
    call(sim, clock, "Refund", refund_params(sim.create_capture("100.00", "USD"), "r1"))
    sim.settle(everything=True)
    sim.settle(everything=True)
    assert [(c.previous_state, c.refund.state) for c in seen] == [(None, "Pending"), ("Pending", "Completed")]


def test_a_decline_is_reported_with_its_reason(sim: Simulator, clock: FakeClock) -> None:
    seen = changes_of(sim)
    note = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected"}}'
    call(
        sim, clock, "Refund", refund_params(sim.create_capture("100.00", "USD"), "r1", SellerRefundNote=note)
    )
    sim.settle(everything=True)
    assert (seen[-1].refund.state, seen[-1].refund.reason_code) == ("Declined", "AmazonRejected")


def test_an_idempotent_replay_reports_nothing(sim: Simulator, clock: FakeClock) -> None:
    params = refund_params(sim.create_capture("100.00", "USD"), "r1")
    call(sim, clock, "Refund", params)
    seen = changes_of(sim)
    call(sim, clock, "Refund", params)
    assert seen == []


def test_an_external_refund_is_reported_completed(sim: Simulator) -> None:
    seen = changes_of(sim)
    sim.external_refund(sim.create_capture("100.00", "USD"), "5.00", "AmazonA-ZRefund")
    assert [(c.previous_state, c.refund.state, c.refund.refund_type) for c in seen] == [
        (None, "Completed", "AmazonA-ZRefund")
    ]


def test_a_reported_refund_is_a_snapshot(sim: Simulator, clock: FakeClock) -> None:
    seen = changes_of(sim)
    call(sim, clock, "Refund", refund_params(sim.create_capture("100.00", "USD"), "r1"))
    sim.settle(everything=True)
    assert seen[0].refund.state == "Pending"
