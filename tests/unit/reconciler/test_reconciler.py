"""One reconciliation run over in-memory doubles: what it sends to Amazon, what it stores, what it skips."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import Price
from amazon_pay_refunds.core.lifecycle import AttemptAccepted
from amazon_pay_refunds.core.models import AttemptState, Refund, RefundStatus
from amazon_pay_refunds.use_cases.reconciliation import ReconciliationReport
from amazon_pay_refunds.use_cases.submission import FaultHook, FaultPoint

from .doubles import (
    NOW,
    Clock,
    ReconcilerAmazon,
    ReconcilerStore,
    capture_details,
    reconciler,
    refund_details,
)

R1 = "S01-1234567-1234567-R000001"
R2 = "S01-1234567-1234567-R000002"
UNAVAILABLE = AmazonPayError("ServiceUnavailable", "try later", http_status=503)
TIMEOUT = AmazonPayError("RequestTimeout", "no answer")
DUPLICATE = AmazonPayError("DuplicateRequest", "reference id used with other parameters", http_status=400)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> ReconcilerStore:
    return ReconcilerStore()


def run(
    store: ReconcilerStore,
    amazon: ReconcilerAmazon,
    clock: Clock,
    limit: int = 25,
    *,
    fault_hook: FaultHook | None = None,
) -> ReconciliationReport:
    return reconciler(store, amazon, clock, fault_hook=fault_hook).run(deadline=float("inf"), limit=limit)


def stored(store: ReconcilerStore, refund_id: str) -> Refund:
    return store.refunds[refund_id]


# --- Pending attempts ---------------------------------------------------------------------------------


def test_a_pending_attempt_amazon_completed_is_completed_by_the_poll(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW, pending_as=R1)
    amazon = ReconcilerAmazon(details={R1: [refund_details(R1, "Completed")]})
    clock.advance(minutes=5)
    report = run(store, amazon, clock)
    refund = stored(store, "r1")
    assert refund.status is RefundStatus.COMPLETED
    assert refund.history[-1].cause == "poll:GetRefundDetails"
    assert [(a.kind, a.before, a.after) for a in report.actions] == [
        ("poll", RefundStatus.PENDING, RefundStatus.COMPLETED)
    ]


def test_a_poll_that_finds_nothing_new_writes_only_the_check_record(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW, pending_as=R1)
    version = stored(store, "r1").version
    amazon = ReconcilerAmazon(details={R1: [refund_details(R1, "Pending")]})
    clock.advance(minutes=5)
    run(store, amazon, clock)
    assert stored(store, "r1").version == version
    assert store.poll_writes == 1
    assert store.checks["r1"] == (1, clock.now)


def test_a_pending_attempt_is_not_polled_again_before_its_backoff(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW, pending_as=R1)
    amazon = ReconcilerAmazon(details={R1: [refund_details(R1, "Pending")]})
    clock.advance(minutes=5)
    run(store, amazon, clock)  # check 1; the next is due 2 minutes later
    clock.advance(minutes=1, seconds=59)
    assert run(store, amazon, clock).actions == ()
    clock.advance(seconds=1)
    run(store, amazon, clock)
    assert amazon.details_calls == [R1, R1]
    assert store.checks["r1"][0] == 2


def test_a_declined_processing_failure_found_by_polling_schedules_the_retry(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW, pending_as=R1)
    declined = replace(
        refund_details(R1, "Declined"),
        refund_status=replace(
            refund_details(R1).refund_status, state="Declined", reason_code="ProcessingFailure"
        ),
    )
    clock.advance(minutes=5)
    run(store, ReconcilerAmazon(details={R1: [declined]}), clock)
    refund = stored(store, "r1")
    assert (refund.status, refund.reason_code) == (RefundStatus.RETRY_SCHEDULED, "ProcessingFailure")
    assert refund.history[-1].declined


def test_an_ipn_that_already_completed_the_refund_makes_the_poll_harmless(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW, pending_as=R1)

    class IpnFirst(ReconcilerAmazon):
        def get_refund_details(self, amazon_refund_id: str, **kw: object) -> object:  # type: ignore[override]
            answer = super().get_refund_details(amazon_refund_id)
            store.observe("r1", AttemptAccepted(1, R1, AttemptState.COMPLETED, cause="ipn:n1"), at=clock.now)
            return answer

    clock.advance(minutes=5)
    run(store, IpnFirst(details={R1: [refund_details(R1, "Completed")]}), clock)
    refund = stored(store, "r1")
    assert refund.status is RefundStatus.COMPLETED
    assert [h.cause for h in refund.history][-1] == "ipn:n1"  # one Completed entry, the IPN's


def test_a_failing_get_refund_details_backs_off_like_a_poll(store: ReconcilerStore, clock: Clock) -> None:
    store.add("r1", at=NOW, pending_as=R1)
    clock.advance(minutes=5)
    report = run(store, ReconcilerAmazon(details={R1: [UNAVAILABLE]}), clock)
    assert report.failures == 1 and report.actions[0].error == "ServiceUnavailable"
    assert store.checks["r1"][0] == 1
    assert stored(store, "r1").status is RefundStatus.PENDING


# --- Requested refunds --------------------------------------------------------------------------------


def test_a_requested_refund_past_its_grace_is_submitted_once_with_its_reference(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW)
    amazon = ReconcilerAmazon(refund_answers=[refund_details(R1, "Pending")])
    clock.advance(minutes=3)
    report = run(store, amazon, clock)
    assert [c["reference"] for c in amazon.refund_calls] == ["r1_1"]
    assert stored(store, "r1").status is RefundStatus.PENDING
    assert report.submitted == 1 and report.polled == 0


def test_a_requested_refund_within_its_grace_is_left_to_its_request(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW)
    amazon = ReconcilerAmazon()
    clock.advance(minutes=1)
    assert run(store, amazon, clock).actions == ()
    assert amazon.refund_calls == []


def test_an_unknown_answer_leaves_it_requested_and_backs_off(store: ReconcilerStore, clock: Clock) -> None:
    store.add("r1", at=NOW)
    amazon = ReconcilerAmazon(refund_answers=[TIMEOUT])
    clock.advance(minutes=3)
    report = run(store, amazon, clock)
    assert stored(store, "r1").status is RefundStatus.REQUESTED
    assert report.actions[0].error is None and "unknown" in report.actions[0].detail
    clock.advance(minutes=1)
    run(store, amazon, clock)
    assert len(amazon.refund_calls) == 1  # its second try is due 2 minutes after the first
    clock.advance(minutes=1)
    run(store, amazon, clock)
    assert len(amazon.refund_calls) == 2


def test_a_reference_amazon_refuses_as_used_records_the_refund_amazon_made_under_it(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW)
    made = replace(refund_details(R2, "Completed"), refund_reference_id="r1_1")
    other = replace(refund_details(R1, "Completed"), refund_reference_id="someone-else_1")
    amazon = ReconcilerAmazon(
        refund_answers=[DUPLICATE],
        capture_answers=[replace(capture_details(), id_list=(R1, R2))],
        details={R1: [other], R2: [made]},
    )
    clock.advance(minutes=3)
    run(store, amazon, clock)
    refund = stored(store, "r1")
    assert refund.status is RefundStatus.COMPLETED
    assert (refund.attempts[0].amazon_refund_id, refund.attempts[0].state) == (R2, AttemptState.COMPLETED)


def test_a_refund_under_our_reference_with_another_amount_is_not_adopted(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW)
    made = replace(
        refund_details(R2, "Completed"),
        refund_reference_id="r1_1",
        refund_amount=Price(Decimal("99.00"), "USD"),
    )
    amazon = ReconcilerAmazon(
        refund_answers=[DUPLICATE],
        capture_answers=[replace(capture_details(), id_list=(R2,))],
        details={R2: [made]},
    )
    clock.advance(minutes=3)
    run(store, amazon, clock)
    refund = stored(store, "r1")
    assert (refund.status, refund.reason_code) == (RefundStatus.MANUAL_ACTION_REQUIRED, "DuplicateRequest")


def test_a_duplicate_refusal_whose_lookup_amazon_does_not_answer_stays_requested(
    store: ReconcilerStore, clock: Clock
) -> None:
    store.add("r1", at=NOW)
    amazon = ReconcilerAmazon(refund_answers=[DUPLICATE], capture_answers=[UNAVAILABLE])
    clock.advance(minutes=3)
    run(store, amazon, clock)
    assert stored(store, "r1").status is RefundStatus.REQUESTED


# --- bounds -------------------------------------------------------------------------------------------


def test_no_more_refunds_than_the_limit_are_acted_on(store: ReconcilerStore, clock: Clock) -> None:
    for n in range(5):
        store.add(f"r{n}", at=NOW)
    amazon = ReconcilerAmazon(refund_answers=[refund_details(R1, "Pending")])
    clock.advance(minutes=3)
    report = run(store, amazon, clock, limit=2)
    assert [a.refund_id for a in report.actions] == ["r0", "r1"]
    assert (len(amazon.refund_calls), report.deferred) == (2, 3)


def test_no_refund_is_started_when_the_time_is_up(store: ReconcilerStore, clock: Clock) -> None:
    store.add("r1", at=NOW)
    amazon = ReconcilerAmazon()
    clock.advance(minutes=3)
    rec = reconciler(store, amazon, clock)
    report = rec.run(deadline=0.0, limit=25)  # time.monotonic() is far beyond 0
    assert (report.actions, report.deferred, amazon.refund_calls) == ((), 1, [])


def test_a_failure_on_one_refund_does_not_stop_the_run(store: ReconcilerStore, clock: Clock) -> None:
    store.add("r1", at=NOW)
    store.add("r2", at=NOW)

    class Crash(Exception):
        pass

    def crash_on_r1(point: FaultPoint, refund: Refund) -> None:
        if refund.refund_id == "r1":
            raise Crash(point)

    amazon = ReconcilerAmazon(refund_answers=[refund_details(R1, "Pending")])
    clock.advance(minutes=3)
    report = run(store, amazon, clock, fault_hook=crash_on_r1)
    assert [(a.refund_id, a.error) for a in report.actions] == [("r1", "Crash"), ("r2", None)]
    assert stored(store, "r2").status is RefundStatus.PENDING


def test_a_submitted_refund_is_not_polled_in_the_same_run(store: ReconcilerStore, clock: Clock) -> None:
    store.add("r1", at=NOW)
    amazon = ReconcilerAmazon(
        refund_answers=[refund_details(R1, "Pending")], details={R1: [refund_details(R1)]}
    )
    clock.advance(hours=1)
    report = run(store, amazon, clock)
    assert [a.kind for a in report.actions] == ["submit"]
    assert amazon.details_calls == []


def test_overdue_retries_are_reported_and_left_alone(store: ReconcilerStore, clock: Clock) -> None:
    store.add("r1", at=NOW)
    store.observe("r1", AttemptAccepted(1, R1, AttemptState.DECLINED, "ProcessingFailure"), at=NOW)
    amazon = ReconcilerAmazon()
    clock.advance(minutes=30)
    report = run(store, amazon, clock)
    assert report.retry_overdue == ("r1",)
    assert report.actions == () and amazon.refund_calls == [] and amazon.details_calls == []


def test_the_report_counts_what_is_open(store: ReconcilerStore, clock: Clock) -> None:
    store.add("r1", at=NOW)
    store.add("r2", at=NOW, pending_as=R2)
    store.page_size = 1  # the scan reads every page
    report = run(store, ReconcilerAmazon(), clock)
    assert report.scanned == 2 and report.scan_complete
    assert report.stats.by_status[RefundStatus.REQUESTED] == 1
    assert report.stats.by_status[RefundStatus.PENDING] == 1
