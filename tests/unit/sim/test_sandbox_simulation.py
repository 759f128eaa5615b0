"""Sandbox simulation strings in SellerRefundNote: AmazonRejected, and our ProcessingFailure extension."""

from __future__ import annotations

import pytest

from amazon_pay_sim import Simulator
from tests.support.sim import FakeClock, call, refund_params

REJECTED = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected"}}'
PROCESSING_FAILURE = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"ProcessingFailure"}}'
PROCESSING_FAILURE_ONCE = (
    '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"ProcessingFailure", "Times": 1}}'
)


def settled_refund(sim: Simulator, clock: FakeClock, capture_id: str, reference: str, note: str):  # type: ignore[no-untyped-def]
    answer = call(sim, clock, "Refund", refund_params(capture_id, reference, "1.00", SellerRefundNote=note))
    assert answer.status == 200, answer.body
    assert answer.field("State") == "Pending"
    sim.settle(everything=True)
    return call(sim, clock, "GetRefundDetails", {"AmazonRefundId": answer.field("AmazonRefundId") or ""})


def outcome(answer) -> tuple[str | None, str | None]:  # type: ignore[no-untyped-def]
    return answer.field("State"), answer.field("ReasonCode")


def test_amazon_rejected_declines_the_refund(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    assert outcome(settled_refund(sim, clock, capture_id, "r1", REJECTED)) == ("Declined", "AmazonRejected")


def test_processing_failure_without_times_declines_every_refund_carrying_it(
    sim: Simulator, clock: FakeClock
) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    results = [outcome(settled_refund(sim, clock, capture_id, f"r{n}", PROCESSING_FAILURE)) for n in range(3)]
    assert results == [("Declined", "ProcessingFailure")] * 3


def test_processing_failure_times_declines_only_the_first_refunds(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    first = settled_refund(sim, clock, capture_id, "r1", PROCESSING_FAILURE_ONCE)
    second = settled_refund(sim, clock, capture_id, "r2", PROCESSING_FAILURE_ONCE)
    assert [outcome(first), outcome(second)] == [("Declined", "ProcessingFailure"), ("Completed", None)]


def test_processing_failure_times_counts_per_capture(sim: Simulator, clock: FakeClock) -> None:
    settled_refund(sim, clock, sim.create_capture("100.00", "USD"), "r1", PROCESSING_FAILURE_ONCE)
    other = sim.create_capture("100.00", "USD")
    assert outcome(settled_refund(sim, clock, other, "r2", PROCESSING_FAILURE_ONCE)) == (
        "Declined",
        "ProcessingFailure",
    )


def test_an_idempotent_replay_does_not_use_up_a_processing_failure(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    params = refund_params(capture_id, "r1", "1.00", SellerRefundNote=PROCESSING_FAILURE_ONCE)
    call(sim, clock, "Refund", params)
    call(sim, clock, "Refund", params)
    sim.settle(everything=True)
    assert outcome(call(sim, clock, "Refund", params)) == ("Declined", "ProcessingFailure")


def test_an_ordinary_note_completes(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    assert outcome(settled_refund(sim, clock, capture_id, "r1", "Returned item")) == ("Completed", None)


@pytest.mark.parametrize(
    "note",
    [
        '{"SandboxSimulation": {"State":"Completed"}}',
        '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"InsufficientFunds"}}',
        '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected", "Times": 1}}',
        '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"ProcessingFailure", "Times": 0}}',
        '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"ProcessingFailure", "Times": "2"}}',
        '{"SandboxSimulation": {"State":"Declined"',
        "SandboxSimulation please",
    ],
)
def test_an_invalid_simulation_string_is_refused(sim: Simulator, clock: FakeClock, note: str) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    answer = call(sim, clock, "Refund", refund_params(capture_id, "r1", "1.00", SellerRefundNote=note))
    assert (answer.status, answer.code) == (400, "InvalidSandboxSimulationSpecified")
