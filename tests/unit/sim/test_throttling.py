"""Amazon's sandbox request quotas, per seller and operation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from amazon_pay_sim import Simulator
from amazon_pay_sim.throttle import Throttle
from tests.support.sim import START, FakeClock, call, refund_params


def test_refund_allows_a_burst_of_two() -> None:
    throttle = Throttle()
    assert [throttle.allow("S", "Refund", START) for _ in range(3)] == [True, True, False]


def test_refund_restores_one_request_every_two_seconds() -> None:
    throttle = Throttle()
    for _ in range(2):
        throttle.allow("S", "Refund", START)
    assert not throttle.allow("S", "Refund", START + timedelta(seconds=1.9))
    assert throttle.allow("S", "Refund", START + timedelta(seconds=2.0))


@pytest.mark.parametrize("operation", ["GetRefundDetails", "GetCaptureDetails"])
def test_details_allow_a_burst_of_five_and_one_per_second(operation: str) -> None:
    throttle = Throttle()
    assert [throttle.allow("S", operation, START) for _ in range(6)] == [True] * 5 + [False]
    assert throttle.allow("S", operation, START + timedelta(seconds=1))


def test_quotas_are_per_seller() -> None:
    throttle = Throttle()
    for _ in range(2):
        throttle.allow("S1", "Refund", START)
    assert throttle.allow("S2", "Refund", START)


def test_quotas_are_per_operation() -> None:
    throttle = Throttle()
    for _ in range(2):
        throttle.allow("S", "Refund", START)
    assert throttle.allow("S", "GetRefundDetails", START)


def test_a_disabled_throttle_allows_everything() -> None:
    throttle = Throttle(enabled=False)
    assert all(throttle.allow("S", "Refund", START) for _ in range(50))


def test_a_throttled_call_gets_request_throttled_503(clock: FakeClock) -> None:
    sim = Simulator(clock=clock, throttling=True)
    capture_id = sim.create_capture("100.00", "USD")
    answers = [call(sim, clock, "Refund", refund_params(capture_id, f"r{n}", "1.00")) for n in range(3)]
    assert [a.status for a in answers] == [200, 200, 503]
    assert answers[2].code == "RequestThrottled"
    assert answers[2].field("RequestID")  # the throttled answer spells it RequestID, like Amazon's


def test_a_throttled_refund_is_not_made(clock: FakeClock) -> None:
    sim = Simulator(clock=clock, throttling=True)
    capture_id = sim.create_capture("100.00", "USD")
    for n in range(3):
        call(sim, clock, "Refund", refund_params(capture_id, f"r{n}", "1.00"))
    assert len(sim.capture_view(capture_id)["refunds"]) == 2


def test_throttling_can_be_switched_off_at_run_time(clock: FakeClock) -> None:
    sim = Simulator(clock=clock, throttling=True)
    sim.set_throttling(False)
    capture_id = sim.create_capture("100.00", "USD")
    answers = [call(sim, clock, "Refund", refund_params(capture_id, f"r{n}", "1.00")) for n in range(5)]
    assert {a.status for a in answers} == {200}
