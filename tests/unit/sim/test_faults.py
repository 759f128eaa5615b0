"""Injected faults: the next N calls of an operation fail as asked."""

from __future__ import annotations

import pytest

from amazon_pay_sim import Simulator
from amazon_pay_sim.simulator import ControlError
from tests.support.sim import FakeClock, call, refund_params


def test_a_503_fault_answers_service_unavailable_for_count_calls(sim: Simulator, clock: FakeClock) -> None:
    sim.add_fault("GetServiceStatus", "503", count=2)
    answers = [call(sim, clock, "GetServiceStatus") for _ in range(3)]
    assert [(a.status, a.code) for a in answers] == [
        (503, "ServiceUnavailable"),
        (503, "ServiceUnavailable"),
        (200, None),
    ]


def test_a_500_fault_answers_internal_server_error(sim: Simulator, clock: FakeClock) -> None:
    sim.add_fault("GetServiceStatus", "500")
    answer = call(sim, clock, "GetServiceStatus")
    assert (answer.status, answer.code) == (500, "InternalServerError")


def test_a_throttle_fault_answers_request_throttled(sim: Simulator, clock: FakeClock) -> None:
    sim.add_fault("GetServiceStatus", "throttle")
    answer = call(sim, clock, "GetServiceStatus")
    assert (answer.status, answer.code) == (503, "RequestThrottled")


def test_a_fault_hits_only_its_operation(sim: Simulator, clock: FakeClock) -> None:
    sim.add_fault("Refund", "503")
    assert call(sim, clock, "GetServiceStatus").status == 200


def test_a_faulted_refund_is_not_made(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    sim.add_fault("Refund", "500")
    call(sim, clock, "Refund", refund_params(capture_id, "r1"))
    assert sim.capture_view(capture_id)["refunds"] == []


def test_a_timeout_fault_holds_the_answer_and_makes_no_refund(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    sim.add_fault("Refund", "timeout", hold_seconds=7)
    answer = call(sim, clock, "Refund", refund_params(capture_id, "r1"))
    assert answer.hold_seconds == 7
    assert sim.capture_view(capture_id)["refunds"] == []


def test_accept_then_timeout_makes_the_refund_but_holds_the_answer(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    sim.add_fault("Refund", "accept-then-timeout")
    answer = call(sim, clock, "Refund", refund_params(capture_id, "r1"))
    assert answer.hold_seconds == sim.fault_hold_seconds
    assert [r["refund_reference_id"] for r in sim.capture_view(capture_id)["refunds"]] == ["r1"]


def test_a_retry_after_accept_then_timeout_returns_the_refund_already_made(
    sim: Simulator, clock: FakeClock
) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    sim.add_fault("Refund", "accept-then-timeout")
    call(sim, clock, "Refund", refund_params(capture_id, "r1"))
    retry = call(sim, clock, "Refund", refund_params(capture_id, "r1"))
    assert retry.field("AmazonRefundId") == sim.capture_view(capture_id)["refunds"][0]["amazon_refund_id"]


def test_faults_apply_only_after_authentication(sim: Simulator, clock: FakeClock) -> None:
    sim.add_fault("GetServiceStatus", "503")
    assert call(sim, clock, "GetServiceStatus", secret_key="wrong").code == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    ("operation", "fault", "count"),
    [("Authorize", "503", 1), ("Refund", "404", 1), ("Refund", "503", 0), ("Refund", "503", True)],
)
def test_an_invalid_fault_is_refused(sim: Simulator, operation: str, fault: str, count: int) -> None:
    with pytest.raises(ControlError):
        sim.add_fault(operation, fault, count)
