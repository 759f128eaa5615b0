"""The reconciler's pure rules: backoff, what is due, the order of work, and the open-refund numbers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from amazon_pay_refunds.adapters.dynamodb import OpenRefund
from amazon_pay_refunds.core.lifecycle import AttemptAccepted, ManualActionRequired, PermanentlyRefused
from amazon_pay_refunds.core.models import AttemptState, RefundStatus
from amazon_pay_refunds.core.reconciliation import (
    MAX_POLL_INTERVAL,
    backoff,
    next_check_at,
    open_refund_stats,
    plan_run,
    poll_due,
    retry_overdue,
    submission_due,
)
from tests.support.domain import T0, drive, new_refund

PENDING = AttemptAccepted(1, "S01-1234567-1234567-R000001", AttemptState.PENDING)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_backoff_doubles_from_one_minute_up_to_the_cap() -> None:
    waits = [backoff(k, MAX_POLL_INTERVAL) for k in range(12)]
    assert waits[:5] == [minutes(1), minutes(2), minutes(4), minutes(8), minutes(16)]
    assert waits[-1] == timedelta(hours=6)
    assert max(waits) == timedelta(hours=6)


def test_backoff_of_a_huge_count_stays_at_the_cap() -> None:
    assert backoff(10_000, MAX_POLL_INTERVAL) == timedelta(hours=6)


def test_next_check_counts_from_the_last_check() -> None:
    refund = drive(new_refund(), PENDING)
    checked = OpenRefund(refund, polls=3, last_polled_at=refund.updated_at + minutes(30))
    assert next_check_at(checked, MAX_POLL_INTERVAL) == refund.updated_at + minutes(30 + 8)


def test_next_check_counts_from_a_change_newer_than_the_last_check() -> None:
    refund = drive(new_refund(), PENDING)
    stale = OpenRefund(refund, polls=0, last_polled_at=refund.updated_at - minutes(30))
    assert next_check_at(stale, MAX_POLL_INTERVAL) == refund.updated_at + minutes(1)


def test_a_requested_refund_within_its_grace_period_is_not_submitted() -> None:
    refund = new_refund()
    assert not submission_due(OpenRefund(refund), T0 + timedelta(seconds=119))
    assert submission_due(OpenRefund(refund), T0 + timedelta(seconds=120))


def test_a_requested_refund_whose_answer_stayed_unknown_waits_for_its_backoff() -> None:
    refund = new_refund()
    tried = OpenRefund(refund, polls=2, last_polled_at=T0 + minutes(10))
    assert not submission_due(tried, T0 + minutes(13))
    assert submission_due(tried, T0 + minutes(14))


def test_a_pending_attempt_is_due_after_its_backoff_and_not_before() -> None:
    refund = drive(new_refund(), PENDING)
    assert not poll_due(OpenRefund(refund), refund.updated_at + timedelta(seconds=59))
    assert poll_due(OpenRefund(refund), refund.updated_at + minutes(1))


def test_a_refund_without_a_pending_attempt_is_never_polled() -> None:
    failed_first = drive(new_refund(), PermanentlyRefused(1, "DuplicateRequest"))
    assert failed_first.status is RefundStatus.MANUAL_ACTION_REQUIRED
    assert not poll_due(OpenRefund(failed_first), T0 + timedelta(days=1))


def test_a_manual_action_refund_with_a_pending_attempt_is_polled() -> None:
    refund = drive(new_refund(), PENDING, ManualActionRequired("RetryOutcomeUnknown", "retry:timeout"))
    assert poll_due(OpenRefund(refund), T0 + timedelta(hours=1))


def test_plan_submits_oldest_first_then_polls_longest_due_first_and_each_refund_once() -> None:
    old = new_refund("old")
    young = replace(new_refund("young"), created_at=T0 + minutes(1), updated_at=T0 + minutes(1))
    polled_late = drive(new_refund("p-late"), PENDING)
    polled_early = replace(polled_late, refund_id="p-early", updated_at=polled_late.updated_at - minutes(5))
    plan = plan_run(
        [OpenRefund(r) for r in (young, polled_late, old, polled_early)],
        T0 + minutes(10),
        timedelta(seconds=90),
    )
    assert [o.refund.refund_id for o in plan.submissions] == ["old", "young"]
    assert [o.refund.refund_id for o in plan.polls] == ["p-early", "p-late"]


def test_retry_scheduled_beyond_the_retry_window_is_overdue() -> None:
    declined = AttemptAccepted(1, "S01-1234567-1234567-R000001", AttemptState.DECLINED, "ProcessingFailure")
    refund = drive(new_refund(), declined)
    assert refund.status is RefundStatus.RETRY_SCHEDULED
    delay = timedelta(seconds=90)
    assert not retry_overdue(refund, refund.updated_at + minutes(11), delay)
    assert retry_overdue(refund, refund.updated_at + minutes(12), delay)


def test_stats_count_open_refunds_by_status_and_age_the_oldest_unsettled_one() -> None:
    manual = drive(new_refund("manual"), PermanentlyRefused(1, "DuplicateRequest"))
    pending = replace(drive(new_refund("pending"), PENDING), created_at=T0 + minutes(5))
    requested = replace(new_refund("requested"), created_at=T0 + minutes(20))
    stats = open_refund_stats([manual, pending, requested], T0 + minutes(65))
    assert stats.by_status == {
        RefundStatus.REQUESTED: 1,
        RefundStatus.PENDING: 1,
        RefundStatus.RETRY_SCHEDULED: 0,
        RefundStatus.MANUAL_ACTION_REQUIRED: 1,
    }
    assert stats.manual_action_required == 1
    # The ManualActionRequired refund is older, but it waits on people: the age measures the others.
    assert (stats.oldest_refund_id, stats.oldest_age_seconds) == ("pending", 3600.0)


def test_stats_of_nothing_open_are_zero() -> None:
    stats = open_refund_stats([], T0)
    assert stats.oldest_age_seconds == 0.0 and stats.oldest_refund_id is None
    assert set(stats.by_status.values()) == {0}
