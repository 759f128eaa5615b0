"""A crash at either fault point leaves a `Requested` refund with its reservation and audit trail, and
`submit_requested` (the reconciler's call) then finishes it exactly once: Amazon answers the unchanged
RefundReferenceId with the refund it already made."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from amazon_pay_refunds import runtime
from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.adapters.mws.client import deadline_in
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.core.models import Refund
from amazon_pay_refunds.use_cases.submission import FaultPoint
from amazon_pay_sim import Simulator
from tests.support.refund_api_stack import Api, refund_body, refund_calls

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
Capture = Callable[..., str]


class Crash(Exception):
    """The Lambda dies here (timeout, out of memory, a lost container)."""


def crashing_at(where: FaultPoint) -> Callable[[FaultPoint, Refund], None]:
    def hook(point: FaultPoint, refund: Refund) -> None:
        if point == where:
            raise Crash(point)

    return hook


def crash_the_handler_at(monkeypatch: pytest.MonkeyPatch, where: FaultPoint) -> None:
    handler_module = importlib.import_module("functions.refund_api.app")
    monkeypatch.setattr(
        handler_module,
        "refund_service",
        lambda: lambda_services().refund_requests(fault_hook=crashing_at(where)),
    )


def submit_requested(refund_id: str) -> Refund:
    return lambda_services().refund_requests().submit_requested(refund_id, deadline=deadline_in(10))


def refunds_at_amazon(simulator: Simulator, capture_id: str) -> list[dict[str, object]]:
    refunds: list[dict[str, object]] = simulator.capture_view(capture_id)["refunds"]
    return refunds


@pytest.mark.parametrize("point", ["after_reservation", "after_amazon_answer"])
def test_crash_leaves_a_requested_refund_with_its_reservation_and_trail(
    api: Api, capture: Capture, store: RefundStore, monkeypatch: pytest.MonkeyPatch, point: FaultPoint
) -> None:
    capture_id = capture("100.00")
    crash_the_handler_at(monkeypatch, point)
    answer = api.post_refund(refund_body(capture_id, amount="25.00"))
    assert (answer.status, answer.error_code) == (500, "InternalError")
    stored = store.get_refund("ord-1001-r1")
    assert stored is not None
    assert stored.status.value == "Requested" and not stored.reservation_pending
    assert [h.cause for h in stored.history] == ["api:POST /refunds"]
    assert api.get_capture(capture_id).body["in_flight"] == "25.00"


def test_crash_answer_reveals_no_internals(
    api: Api, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_the_handler_at(monkeypatch, "after_reservation")
    answer = api.post_refund(refund_body(capture()))
    assert answer.body == {
        "error": {
            "code": "InternalError",
            "message": "internal error; the request may be repeated",
            "details": None,
        }
    }


def test_after_a_crash_before_amazon_submit_requested_sends_it_once(
    api: Api, capture: Capture, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture_id = capture()
    crash_the_handler_at(monkeypatch, "after_reservation")
    api.post_refund(refund_body(capture_id))
    assert refund_calls(simulator) == []
    finished = submit_requested("ord-1001-r1")
    assert finished.status.value == "Pending"
    assert len(refunds_at_amazon(simulator, capture_id)) == 1


def test_after_a_crash_after_amazons_answer_submit_requested_gets_the_same_refund(
    api: Api, capture: Capture, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture_id = capture()
    crash_the_handler_at(monkeypatch, "after_amazon_answer")
    api.post_refund(refund_body(capture_id))
    [made] = refunds_at_amazon(simulator, capture_id)
    finished = submit_requested("ord-1001-r1")
    assert finished.status.value == "Pending"
    assert finished.latest_attempt.amazon_refund_id == made["amazon_refund_id"]
    assert len(refunds_at_amazon(simulator, capture_id)) == 1
    calls = refund_calls(simulator)
    assert [c["params"]["RefundReferenceId"] for c in calls] == ["ord-1001-r1_1", "ord-1001-r1_1"]


def test_submit_requested_twice_changes_nothing_the_second_time(
    api: Api, capture: Capture, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture_id = capture()
    crash_the_handler_at(monkeypatch, "after_reservation")
    api.post_refund(refund_body(capture_id))
    first = submit_requested("ord-1001-r1")
    second = submit_requested("ord-1001-r1")
    assert (second.status, second.version) == (first.status, first.version)  # nothing stored again
    assert len(refund_calls(simulator)) == 1


def test_answer_lost_after_amazon_made_the_refund_is_recovered_without_a_second_refund(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture()
    simulator.add_fault("Refund", "accept-then-timeout", count=1, hold_seconds=5)
    api.remaining_seconds = 3.5  # half a second for Amazon: one attempt, no time left for a retry
    answer = api.post_refund(refund_body(capture_id))
    assert (answer.status, answer.body["status"]) == (202, "Requested")
    finished = submit_requested("ord-1001-r1")
    assert finished.status.value == "Pending"
    assert len(refunds_at_amazon(simulator, capture_id)) == 1


def test_refund_stored_without_reservation_is_reserved_then_sent(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture("100.00")
    simulator.add_fault("GetCaptureDetails", "503", count=8)
    api.remaining_seconds = 5.0
    api.post_refund(refund_body(capture_id, amount="30.00"))
    _drain_faults(capture_id)
    finished = submit_requested("ord-1001-r1")
    assert finished.status.value == "Pending" and not finished.reservation_pending
    assert api.get_capture(capture_id).body["in_flight"] == "30.00"
    assert len(refunds_at_amazon(simulator, capture_id)) == 1


def test_refund_without_reservation_stays_requested_while_amazon_is_unreachable(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore
) -> None:
    capture_id = capture()
    simulator.add_fault("GetCaptureDetails", "503", count=500)
    api.remaining_seconds = 5.0
    api.post_refund(refund_body(capture_id))
    still = lambda_services().refund_requests().submit_requested("ord-1001-r1", deadline=deadline_in(1))
    assert still.status.value == "Requested" and still.reservation_pending
    assert refund_calls(simulator) == []


def test_refund_without_reservation_on_a_closed_capture_fails_without_calling_refund(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    capture_id = capture()
    simulator.add_fault("GetCaptureDetails", "503", count=8)
    api.remaining_seconds = 5.0
    api.post_refund(refund_body(capture_id))
    _drain_faults(capture_id)
    simulator.close_capture(capture_id)
    finished = submit_requested("ord-1001-r1")
    assert (finished.status.value, finished.reason_code) == ("Failed", "CaptureNotRefundable")
    assert refund_calls(simulator) == []


def test_refund_without_reservation_that_no_longer_fits_fails_with_refund_exceeds_capture(
    api: Api, capture: Capture, simulator: Simulator
) -> None:
    """Another refund opened the ledger and took the money while this one waited for its reservation."""
    capture_id = capture("50.00")
    simulator.add_fault("GetCaptureDetails", "503", count=8)
    api.remaining_seconds = 5.0
    api.post_refund(refund_body(capture_id, "late", "30.00"))
    _drain_faults(capture_id)
    api.remaining_seconds = 25.0
    assert api.post_refund(refund_body(capture_id, "early", "40.00")).status == 202
    finished = submit_requested("late")
    assert (finished.status.value, finished.reason_code) == ("Failed", "RefundExceedsCapture")
    assert api.get_capture(capture_id).body["available"] == "10.00"


def test_submit_requested_of_an_unknown_refund_is_not_found(api: Api) -> None:
    from amazon_pay_refunds.use_cases.errors import RefundNotFound

    with pytest.raises(RefundNotFound):
        submit_requested("never-requested")


def _drain_faults(capture_id: str) -> None:
    """Use up what is left of a GetCaptureDetails fault: Amazon is reachable again."""
    for _ in range(20):
        try:
            runtime.amazon_pay().get_capture_details(capture_id, deadline=deadline_in(0.3))
        except AmazonPayError:
            continue
        return
    raise AssertionError("the simulator kept failing GetCaptureDetails")
