"""Reconciliation planning (pure): which open refunds are due for a check, the backoff between checks,
what the OldestOpenRefundAgeSeconds and OpenRefunds metrics measure. `use_cases/reconciliation.py` runs it.

Backoff: a refund's k-th check (k = checks since its last change) is due `min(2^k minutes, cap)` after the
later of its last change and its last check; the cap is 6 h for Pending attempts and 30 min for Requested
refunds whose submission still had no answer. A change of the refund drops its check record (the store
rewrites the item whole), which restarts the backoff.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from amazon_pay_refunds.core.models import OPEN_STATUSES, Attempt, AttemptState, Refund, RefundStatus

# A `Requested` refund younger than this may still be in its first request: never race it.
REQUESTED_GRACE = timedelta(minutes=2)
BACKOFF_BASE = timedelta(minutes=1)
MAX_POLL_INTERVAL = timedelta(hours=6)
MAX_RESUBMIT_INTERVAL = timedelta(minutes=30)
# How long past RETRY_DELAY_SECONDS a RetryScheduled refund may go without progress before it is reported.
RETRY_WINDOW_SLACK = timedelta(minutes=10)
# Statuses whose age the OldestOpenRefundAgeSeconds metric measures (ManualActionRequired waits on people).
MEASURED_STATUSES = (RefundStatus.REQUESTED, RefundStatus.PENDING, RefundStatus.RETRY_SCHEDULED)


@dataclass(frozen=True)
class OpenRefund:
    """An open refund as the reconciler reads it, with its check record (`polls` checks so far, the last at
    `last_polled_at`). The record lives on the refund item but not in `Refund`: any change of the refund
    rewrites the item without it, so the reconciler's backoff restarts after every change."""

    refund: Refund
    polls: int = 0
    last_polled_at: datetime | None = None


def backoff(checks: int, cap: timedelta) -> timedelta:
    """The wait before the next check after `checks` checks: 1, 2, 4, ... minutes, at most `cap`."""
    wait: timedelta = BACKOFF_BASE * (2 ** min(checks, 20))
    return min(wait, cap)


def next_check_at(open_refund: OpenRefund, cap: timedelta) -> datetime:
    """When the refund is next due: its backoff after the later of its last change and its last check."""
    refund, last = open_refund.refund, open_refund.last_polled_at
    since = refund.updated_at if last is None or last < refund.updated_at else last
    return since + backoff(open_refund.polls, cap)


def submission_due(open_refund: OpenRefund, now: datetime) -> bool:
    """A `Requested` refund quiet for the grace period, and not backing off from an unknown answer."""
    refund = open_refund.refund
    if refund.status is not RefundStatus.REQUESTED or now - refund.updated_at < REQUESTED_GRACE:
        return False
    return open_refund.polls == 0 or now >= next_check_at(open_refund, MAX_RESUBMIT_INTERVAL)


def attempt_to_poll(refund: Refund) -> Attempt | None:
    """The attempt Amazon last reported Pending (the one GetRefundDetails can settle), if any."""
    return next(
        (
            a
            for a in reversed(refund.attempts)
            if a.state is AttemptState.PENDING and a.amazon_refund_id is not None
        ),
        None,
    )


def poll_due(open_refund: OpenRefund, now: datetime) -> bool:
    return attempt_to_poll(open_refund.refund) is not None and now >= next_check_at(
        open_refund, MAX_POLL_INTERVAL
    )


def retry_overdue(refund: Refund, now: datetime, retry_delay: timedelta) -> bool:
    """A `RetryScheduled` refund the RetryWorkflow should long have moved on (it is left to the workflow)."""
    return refund.status is RefundStatus.RETRY_SCHEDULED and now - refund.updated_at > (
        retry_delay + RETRY_WINDOW_SLACK
    )


@dataclass(frozen=True)
class OpenRefundStats:
    """What is open right now, for the metrics and the alarms."""

    by_status: dict[RefundStatus, int]
    oldest_age_seconds: float
    oldest_refund_id: str | None

    @property
    def manual_action_required(self) -> int:
        return self.by_status[RefundStatus.MANUAL_ACTION_REQUIRED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "open_refunds": {status.value: count for status, count in self.by_status.items()},
            "manual_action_required": self.manual_action_required,
            "oldest_open_refund_age_seconds": round(self.oldest_age_seconds, 3),
            "oldest_open_refund_id": self.oldest_refund_id,
        }


def open_refund_stats(refunds: Iterable[Refund], now: datetime) -> OpenRefundStats:
    by_status = dict.fromkeys(OPEN_STATUSES, 0)
    oldest: Refund | None = None
    for refund in refunds:
        if refund.is_final:
            continue
        by_status[refund.status] += 1
        if refund.status in MEASURED_STATUSES and (oldest is None or refund.created_at < oldest.created_at):
            oldest = refund
    age = max((now - oldest.created_at).total_seconds(), 0.0) if oldest is not None else 0.0
    return OpenRefundStats(by_status, age, oldest.refund_id if oldest is not None else None)


@dataclass(frozen=True)
class Plan:
    """A run's work, in the order it is done: submissions (oldest first), then polls (longest due first)."""

    submissions: tuple[OpenRefund, ...]
    polls: tuple[OpenRefund, ...]
    retry_overdue: tuple[Refund, ...]


def plan_run(open_refunds: Sequence[OpenRefund], now: datetime, retry_delay: timedelta) -> Plan:
    submissions = [o for o in open_refunds if submission_due(o, now)]
    submissions.sort(key=lambda o: (o.refund.created_at, o.refund.refund_id))
    chosen = {o.refund.refund_id for o in submissions}
    polls = [o for o in open_refunds if o.refund.refund_id not in chosen and poll_due(o, now)]
    polls.sort(key=lambda o: (next_check_at(o, MAX_POLL_INTERVAL), o.refund.refund_id))
    return Plan(
        submissions=tuple(submissions),
        polls=tuple(polls),
        retry_overdue=tuple(o.refund for o in open_refunds if retry_overdue(o.refund, now, retry_delay)),
    )


# --- the run's report ------------------------------------------------------------------------------------
