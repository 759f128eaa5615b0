"""The reconciler against moto and the simulator: lost IPNs, crashed requests, unreachable Amazon, bounds."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.core.models import Refund
from amazon_pay_refunds.use_cases.submission import FaultPoint
from amazon_pay_sim import Simulator
from tests.support.refund_api_stack import Api, refund_body

from .conftest import Clock, Reconcile, calls, get, refunds_at_amazon

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
Capture = Callable[..., str]


class Crash(Exception):
    """The Lambda dies here."""


def crash_the_api_at(monkeypatch: pytest.MonkeyPatch, where: FaultPoint) -> None:
    def hook(point: FaultPoint, refund: Refund) -> None:
        if point == where:
            raise Crash(point)

    module = importlib.import_module("functions.refund_api.app")
    monkeypatch.setattr(module, "refund_service", lambda: lambda_services().refund_requests(fault_hook=hook))


# --- a lost IPN ---------------------------------------------------------------------------------------


def test_a_lost_ipn_is_replaced_by_a_poll_that_completes_the_refund(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore, reconcile: Reconcile, clock: Clock
) -> None:
    capture_id = capture()
    assert api.post_refund(refund_body(capture_id)).body["status"] == "Pending"
    simulator.settle(everything=True)  # Amazon completed it; its IPN never arrives
    clock.advance(minutes=2)
    report = reconcile()
    refund = get(store, "ord-1001-r1")
    assert refund.status.value == "Completed"
    assert refund.history[-1].cause == "poll:GetRefundDetails"
    assert [(a.kind, a.after.value) for a in report.actions] == [("poll", "Completed")]
    assert api.get_capture(capture_id).body["completed"] == "12.50"


def test_a_pending_refund_is_not_polled_again_before_its_backoff(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore, reconcile: Reconcile, clock: Clock
) -> None:
    api.post_refund(refund_body(capture()))
    version = get(store, "ord-1001-r1").version
    clock.advance(minutes=2)
    reconcile()  # check 1: still Pending at Amazon
    assert len(calls(simulator, "GetRefundDetails")) == 1
    assert get(store, "ord-1001-r1").version == version  # nothing but the check record was written
    clock.advance(minutes=1)
    assert reconcile().actions == ()
    assert len(calls(simulator, "GetRefundDetails")) == 1
    clock.advance(minutes=1, seconds=5)
    reconcile()
    assert len(calls(simulator, "GetRefundDetails")) == 2


def test_a_poll_that_finds_no_change_writes_only_the_small_check_record(
    api: Api, capture: Capture, store: RefundStore, reconcile: Reconcile, clock: Clock
) -> None:
    api.post_refund(refund_body(capture()))
    key = {"pk": {"S": "REFUND#ord-1001-r1"}, "sk": {"S": "REFUND"}}
    before = store.client.get_item(TableName=store.table_name, Key=key)["Item"]
    clock.advance(minutes=2)
    reconcile()
    after = store.client.get_item(TableName=store.table_name, Key=key)["Item"]
    assert set(after) - set(before) == {"polls", "polled_at"}
    assert {k: v for k, v in after.items() if k in before} == before


# --- Requested refunds left by a crash or a lost answer -------------------------------------------------


@pytest.mark.parametrize("point", ["after_reservation", "after_amazon_answer"])
def test_a_refund_left_requested_by_a_crash_is_submitted_exactly_once(
    api: Api,
    capture: Capture,
    simulator: Simulator,
    store: RefundStore,
    reconcile: Reconcile,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    point: FaultPoint,
) -> None:
    capture_id = capture()
    crash_the_api_at(monkeypatch, point)
    assert api.post_refund(refund_body(capture_id)).status == 500
    assert get(store, "ord-1001-r1").status.value == "Requested"
    clock.advance(minutes=3)
    first = reconcile()
    second = reconcile()  # the next run finds it Pending, not due for a poll yet
    assert get(store, "ord-1001-r1").status.value == "Pending"
    assert [a.kind for a in first.actions] == ["submit"] and second.actions == ()
    assert len(refunds_at_amazon(simulator, capture_id)) == 1
    expected_calls = 1 if point == "after_reservation" else 2
    assert [c["params"]["RefundReferenceId"] for c in calls(simulator, "Refund")] == ["ord-1001-r1_1"] * (
        expected_calls
    )


def test_a_refund_whose_answer_was_lost_after_amazon_made_it_is_recovered_without_a_second_refund(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore, reconcile: Reconcile, clock: Clock
) -> None:
    capture_id = capture()
    simulator.add_fault("Refund", "accept-then-timeout", count=1, hold_seconds=5)
    api.remaining_seconds = 3.5  # one attempt, no time for the client's retry
    assert api.post_refund(refund_body(capture_id)).body["status"] == "Requested"
    [made] = refunds_at_amazon(simulator, capture_id)
    clock.advance(minutes=3)
    reconcile()
    refund = get(store, "ord-1001-r1")
    assert refund.status.value == "Pending"
    assert refund.latest_attempt.amazon_refund_id == made["amazon_refund_id"]
    assert len(refunds_at_amazon(simulator, capture_id)) == 1


def test_a_refund_stored_without_reservation_is_reserved_then_submitted(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore, reconcile: Reconcile, clock: Clock
) -> None:
    capture_id = capture("100.00")
    simulator.add_fault("GetCaptureDetails", "503", count=8, hold_seconds=0)
    api.remaining_seconds = 5.0
    api.post_refund(refund_body(capture_id, amount="30.00"))
    assert get(store, "ord-1001-r1").reservation_pending
    _drain(capture_id)
    clock.advance(minutes=3)
    reconcile()
    refund = get(store, "ord-1001-r1")
    assert refund.status.value == "Pending" and not refund.reservation_pending
    assert api.get_capture(capture_id).body["in_flight"] == "30.00"
    assert len(refunds_at_amazon(simulator, capture_id)) == 1


def test_a_requested_refund_amazon_cannot_answer_stays_requested_and_is_retried_after_its_backoff(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore, reconcile: Reconcile, clock: Clock
) -> None:
    capture_id = capture()
    simulator.add_fault("Refund", "503", count=1000, hold_seconds=0)
    api.remaining_seconds = 4.0
    api.post_refund(refund_body(capture_id))
    clock.advance(minutes=3)
    reconcile()
    tried = len(calls(simulator, "Refund"))
    assert get(store, "ord-1001-r1").status.value == "Requested"
    clock.advance(minutes=1)
    assert reconcile().actions == ()
    assert len(calls(simulator, "Refund")) == tried
    assert refunds_at_amazon(simulator, capture_id) == []


def test_a_requested_refund_within_its_grace_period_is_not_raced(
    api: Api,
    capture: Capture,
    simulator: Simulator,
    store: RefundStore,
    reconcile: Reconcile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crash_the_api_at(monkeypatch, "after_reservation")
    api.post_refund(refund_body(capture()))
    assert reconcile().actions == ()
    assert calls(simulator, "Refund") == []


# --- bounds ---------------------------------------------------------------------------------------------


def test_a_run_acts_on_no_more_refunds_than_its_limit_and_the_next_run_continues(
    api: Api,
    capture: Capture,
    simulator: Simulator,
    store: RefundStore,
    reconcile: Reconcile,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capture_id = capture("100.00")
    crash_the_api_at(monkeypatch, "after_reservation")
    for n in range(3):
        api.post_refund(refund_body(capture_id, f"ord-{n}", "10.00"))
    clock.advance(minutes=3)
    first = reconcile(limit=2)
    assert (first.submitted, first.deferred) == (2, 1)
    assert len(refunds_at_amazon(simulator, capture_id)) == 2
    second = reconcile(limit=2)
    assert [a.refund_id for a in second.actions] == ["ord-2"]
    assert len(refunds_at_amazon(simulator, capture_id)) == 3


def _drain(capture_id: str) -> None:
    """Use up what is left of a GetCaptureDetails fault: Amazon is reachable again."""
    from amazon_pay_refunds import runtime
    from amazon_pay_refunds.adapters.mws.client import deadline_in
    from amazon_pay_refunds.adapters.mws.errors import AmazonPayError

    for _ in range(20):
        try:
            runtime.amazon_pay().get_capture_details(capture_id, deadline=deadline_in(0.3))
        except AmazonPayError:
            continue
        return
    raise AssertionError("the simulator kept failing GetCaptureDetails")


def test_a_change_of_the_refund_drops_its_check_record_so_the_backoff_restarts(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore, reconcile: Reconcile, clock: Clock
) -> None:
    api.post_refund(refund_body(capture()))
    clock.advance(minutes=2)
    reconcile()
    [[checked]] = list(store.open_refunds())
    assert checked.polls == 1 and checked.last_polled_at is not None
    simulator.settle(everything=True)
    clock.advance(minutes=2, seconds=5)
    reconcile()  # Completed: the refund item is rewritten whole, without the record
    assert list(store.open_refunds()) == []
    key = {"pk": {"S": "REFUND#ord-1001-r1"}, "sk": {"S": "REFUND"}}
    item = store.client.get_item(TableName=store.table_name, Key=key)["Item"]
    assert "polls" not in item and "gsi1pk" not in item


def test_a_refund_whose_answer_was_unreadable_is_finished_by_the_reconciler_without_a_second_refund(
    api: Api, capture: Capture, simulator: Simulator, store: RefundStore, reconcile: Reconcile, clock: Clock
) -> None:
    """Amazon made the refund and answered in an encoding no XML parser reads (UTF-7)."""
    api.post_refund(refund_body(capture(), "warm-up", "1.00"))  # cold start spent outside the short budget
    capture_id = capture()
    # Every answer the request can get is unreadable, however many retries its deadline allows (each is the
    # same RefundReferenceId, so Amazon makes nothing more); then Amazon answers normally again.
    simulator.add_fault("Refund", "accept-then-unreadable", count=10)
    api.remaining_seconds = 3.5
    assert api.post_refund(refund_body(capture_id)).body["status"] == "Requested"
    simulator.clear_faults()
    [made] = refunds_at_amazon(simulator, capture_id)
    clock.advance(minutes=3)
    reconcile()
    refund = get(store, "ord-1001-r1")
    assert refund.status.value == "Pending"
    assert refund.latest_attempt.amazon_refund_id == made["amazon_refund_id"]
    assert len(refunds_at_amazon(simulator, capture_id)) == 1
