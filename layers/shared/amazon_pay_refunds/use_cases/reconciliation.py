"""Reconciliation (CONTRACT §6): finish what the request path and lost IPNs left open, measure what is open.

One run reads every open refund once (gsi1, oldest first), then, within a limit and the time it has:
1. `Requested` refunds quiet for `REQUESTED_GRACE` (so a request still in flight is not raced) are handed to
   `RefundService.submit_requested`: the reservation is taken if still pending, and attempt 1 is sent with
   its unchanged RefundReferenceId, which Amazon answers with the refund it may already have made. If Amazon
   refuses the reference id as already used, the refund it made under it is looked up (the capture's IdList,
   GetRefundDetails) and recorded instead, when it is the same refund.
2. Attempts Amazon reported `Pending` are checked with GetRefundDetails when due, and what Amazon says is
   applied as `AttemptOutcome` with cause `poll:GetRefundDetails` (monotonic: a racing IPN is harmless).
3. `RetryScheduled` refunds beyond the retry window are counted and logged, and left to the RetryWorkflow.

Backoff: a refund's k-th check (k = checks since its last change) is due `min(2^k minutes, cap)` after the
later of its last change and its last check; the cap is 6 h for Pending attempts and 30 min for Requested
refunds whose submission still had no answer. A check that changes nothing writes only the check record
(`RefundStore.record_poll`: two small attributes); a change of the refund drops the record, restarting it.
No refund is acted on twice in one run, and one refund's failure does not stop the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from amazon_pay_refunds.core.lifecycle import (
    AMBIGUOUS_REFUSALS,
    Transition,
    apply_observation,
)
from amazon_pay_refunds.core.models import (
    AttemptState,
    Refund,
    RefundStatus,
    format_timestamp,
    reported_attempt_state,
)
from amazon_pay_refunds.core.reconciliation import (
    MAX_POLL_INTERVAL,
    MAX_RESUBMIT_INTERVAL,
    OpenRefundStats,
    attempt_to_poll,
    backoff,
    open_refund_stats,
    plan_run,
)
from amazon_pay_refunds.ports import (
    AmazonErrorObserver,
    AmazonPayError,
    AmazonPayPort,
    AttemptOutcomeListener,
    CaptureDetails,
    OpenRefund,
    ReconcilerStorePort,
    RefundDetails,
    ignore_amazon_error,
    ignore_attempt_outcome,
)
from amazon_pay_refunds.use_cases.capture_refunds import polled_outcome
from amazon_pay_refunds.use_cases.refund_requests import RefundService
from amazon_pay_refunds.use_cases.submission import MAX_AMAZON_SECONDS

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 25
# No refund is started with less time than this left: Amazon's answer could not be recorded.
MIN_ACTION_SECONDS = 3.0

ActionKind = Literal["submit", "poll"]


@dataclass(frozen=True)
class Action:
    """What the reconciler did to one refund, and what came of it (`error` when it failed)."""

    refund_id: str
    kind: ActionKind
    before: RefundStatus
    after: RefundStatus
    detail: str
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.after is not self.before

    def to_dict(self) -> dict[str, Any]:
        return {
            "refund_id": self.refund_id,
            "action": self.kind,
            "before": self.before.value,
            "after": self.after.value,
            "detail": self.detail,
            "error": self.error,
        }


@dataclass(frozen=True)
class ReconciliationReport:
    """One run: what was read, what was done, what was left for the next run, and what is open after it."""

    started_at: datetime
    scanned: int
    scan_complete: bool
    actions: tuple[Action, ...]
    deferred: int
    retry_overdue: tuple[str, ...]
    stats: OpenRefundStats
    not_due: int = 0

    @property
    def submitted(self) -> int:
        return sum(1 for a in self.actions if a.kind == "submit")

    @property
    def polled(self) -> int:
        return sum(1 for a in self.actions if a.kind == "poll")

    @property
    def advanced(self) -> int:
        return sum(1 for a in self.actions if a.changed)

    @property
    def failures(self) -> int:
        return sum(1 for a in self.actions if a.error is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": format_timestamp(self.started_at),
            "scanned": self.scanned,
            "scan_complete": self.scan_complete,
            "submitted": self.submitted,
            "polled": self.polled,
            "advanced": self.advanced,
            "failures": self.failures,
            "deferred": self.deferred,
            "not_due": self.not_due,
            "retry_overdue": list(self.retry_overdue),
            **self.stats.to_dict(),
            "actions": [a.to_dict() for a in self.actions],
        }


# --- the reconciler ----------------------------------------------------------------------------------------


class Reconciler:
    """Reconciliation against the store and Amazon Pay (the scheduled Lambda, and `refunds reconcile`)."""

    def __init__(
        self,
        store: ReconcilerStorePort,
        amazon_pay: AmazonPayPort,
        requests: RefundService,
        *,
        retry_delay_seconds: int = 90,
        max_processing_failure_retries: int = 1,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        on_amazon_error: AmazonErrorObserver = ignore_amazon_error,
        on_attempt_outcome: AttemptOutcomeListener = ignore_attempt_outcome,
    ) -> None:
        self._store = store
        self._amazon = amazon_pay
        self._requests = requests
        self._retry_delay = timedelta(seconds=retry_delay_seconds)
        self._max_retries = max_processing_failure_retries
        self._now = now
        self._monotonic = monotonic
        self._on_amazon_error = on_amazon_error
        self._on_attempt_outcome = on_attempt_outcome

    def run(self, *, deadline: float, limit: int = DEFAULT_LIMIT) -> ReconciliationReport:
        """One reconciliation pass: at most `limit` refunds acted on, none started after `deadline`
        (time.monotonic) minus MIN_ACTION_SECONDS."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        started = self._now()
        open_refunds, complete = self._scan(deadline)
        plan = plan_run(open_refunds, started, self._retry_delay)
        for refund in plan.retry_overdue:
            logger.warning(
                "refund %s: RetryScheduled since %s, beyond the retry window; left to the RetryWorkflow",
                refund.refund_id, format_timestamp(refund.updated_at),
            )  # fmt: skip
        work: list[tuple[ActionKind, OpenRefund]] = [("submit", o) for o in plan.submissions]
        work += [("poll", o) for o in plan.polls]
        actions: list[Action] = []
        acted: set[str] = set()
        deferred = 0
        for kind, open_refund in work:
            refund_id = open_refund.refund.refund_id
            if refund_id in acted:
                continue  # never two actions (so never two submissions) for one refund in one run
            if len(actions) >= limit or self._monotonic() > deadline - MIN_ACTION_SECONDS:
                deferred += 1
                continue
            acted.add(refund_id)
            actions.append(self._act(kind, open_refund, deadline))
        if deferred:
            logger.info(
                "reconciliation deferred %d refunds to the next run (limit %d or time)", deferred, limit
            )
        not_due = len(open_refunds) - len(plan.submissions) - len(plan.polls)
        # What is open after this run's work, so that an alarm clears as soon as the work is done.
        now_status = {a.refund_id: a.after for a in actions}
        after = (
            replace(o.refund, status=now_status.get(o.refund.refund_id, o.refund.status))
            for o in open_refunds
        )
        return ReconciliationReport(
            started_at=started,
            scanned=len(open_refunds),
            scan_complete=complete,
            actions=tuple(actions),
            deferred=deferred,
            retry_overdue=tuple(r.refund_id for r in plan.retry_overdue),
            stats=open_refund_stats(after, started),
            not_due=not_due,
        )

    def _scan(self, deadline: float) -> tuple[list[OpenRefund], bool]:
        found: list[OpenRefund] = []
        for page in self._store.open_refunds():
            found.extend(page)
            if self._monotonic() > deadline - MIN_ACTION_SECONDS:
                logger.warning(
                    "reconciliation stopped reading open refunds after %d: no time left", len(found)
                )
                return found, False
        return found, True

    def _act(self, kind: ActionKind, open_refund: OpenRefund, deadline: float) -> Action:
        refund = open_refund.refund
        try:
            if kind == "submit":
                return self._submit(open_refund, deadline)
            return self._poll(open_refund, deadline)
        except Exception as error:  # one refund's failure must not stop the run
            logger.exception("refund %s: reconciliation %s failed", refund.refund_id, kind)
            return Action(refund.refund_id, kind, refund.status, refund.status, "failed", _describe(error))

    def _call_deadline(self, deadline: float) -> float:
        return min(deadline - MIN_ACTION_SECONDS / 2, self._monotonic() + MAX_AMAZON_SECONDS)

    def _submit(self, open_refund: OpenRefund, deadline: float) -> Action:
        before = open_refund.refund
        after = self._requests.submit_requested(before.refund_id, deadline=self._call_deadline(deadline))
        if after.status is RefundStatus.REQUESTED:
            checks = open_refund.polls + 1 if after.version == before.version else 1
            self._store.record_poll(after, checks, self._now())
            wait = backoff(checks, MAX_RESUBMIT_INTERVAL)
            why = "capture still unknown, nothing reserved" if after.reservation_pending else "no answer"
            detail = f"Amazon's answer still unknown ({why}); next try in {_minutes(wait)}"
        else:
            detail = _submission_detail(after)
        return Action(before.refund_id, "submit", before.status, after.status, detail)

    def _poll(self, open_refund: OpenRefund, deadline: float) -> Action:
        refund = open_refund.refund
        attempt = attempt_to_poll(refund)
        if attempt is None or attempt.amazon_refund_id is None:  # pragma: no cover - planned only with one
            return Action(refund.refund_id, "poll", refund.status, refund.status, "nothing to poll")
        checks = open_refund.polls + 1
        wait = backoff(checks, MAX_POLL_INTERVAL)
        try:
            details = self._amazon.get_refund_details(
                refund.amazon_object(attempt.amazon_refund_id),
                seller_id=refund.seller_id,
                deadline=self._call_deadline(deadline),
            )
        except AmazonPayError as error:
            self._on_amazon_error("GetRefundDetails", error)
            self._store.record_poll(refund, checks, self._now())  # back off from a failing call too
            detail = f"GetRefundDetails failed ({error.code}); next poll in {_minutes(wait)}"
            return Action(refund.refund_id, "poll", refund.status, refund.status, detail, error.code)
        # An unexpected state settles nothing.
        state = reported_attempt_state(details.refund_status.state) or AttemptState.PENDING
        outcome = polled_outcome(details, state)
        transition = self._store.transition(
            refund.refund_id,
            lambda current: apply_observation(
                current, outcome, at=self._now(), max_processing_failure_retries=self._max_retries
            ),
        )
        stored = transition.refund
        if _attempt_moved(transition, attempt.attempt):
            self._on_attempt_outcome(transition, outcome)
        if not transition.changed:
            if not stored.is_final:
                self._store.record_poll(stored, checks, self._now())
            detail = f"attempt {attempt.attempt}: Amazon reports {state.value}, nothing new"
            if not stored.is_final:
                detail += f"; next poll in {_minutes(wait)}"
            return Action(refund.refund_id, "poll", refund.status, stored.status, detail)
        reason = f" ({outcome.reason_code})" if outcome.reason_code else ""
        detail = f"attempt {attempt.attempt} {details.amazon_refund_id}: Amazon reports {state.value}{reason}"
        return Action(refund.refund_id, "poll", refund.status, stored.status, detail)


class AdoptsRefundsAlreadyMade:
    """The Amazon Pay port the reconciler submits through.

    When Amazon refuses our RefundReferenceId as already used (`DuplicateRequest`, `DuplicateReferenceId`),
    the refund it made under that id is looked up on the capture (IdList, then GetRefundDetails) and
    answered as the Refund call's result, if it is the same refund (reference id, amount, currency): the
    attempt then records what Amazon really did. Otherwise the refusal stands (→ ManualActionRequired). A
    lookup Amazon does not answer makes the outcome unknown (the refund stays `Requested` for the next run).
    """

    def __init__(self, amazon_pay: AmazonPayPort) -> None:
        self._amazon = amazon_pay

    def refund(
        self,
        amazon_capture_id: str,
        refund_reference_id: str,
        amount: Decimal,
        currency_code: str,
        **options: Any,
    ) -> RefundDetails:
        """`AmazonPayPort.refund` (the options pass through unchanged)."""
        seller_id, deadline = options.get("seller_id"), options.get("deadline")
        try:
            return self._amazon.refund(
                amazon_capture_id, refund_reference_id, amount, currency_code, **options
            )
        except AmazonPayError as refusal:
            if refusal.code not in AMBIGUOUS_REFUSALS:
                raise
            try:
                found = self._find(amazon_capture_id, refund_reference_id, seller_id, deadline)
            except AmazonPayError as lookup_failure:
                if lookup_failure.retryable:
                    raise lookup_failure from refusal
                raise refusal from None
            same = (
                found is not None
                and found.refund_amount.amount == amount
                and found.refund_amount.currency_code == currency_code
            )
            if found is None or not same:
                raise
            logger.warning(
                "Amazon refused RefundReferenceId %s (%s); its refund %s is recorded instead",
                refund_reference_id, refusal.code, found.amazon_refund_id,
            )  # fmt: skip
            return found

    def _find(
        self, amazon_capture_id: str, refund_reference_id: str, seller_id: str | None, deadline: float | None
    ) -> RefundDetails | None:
        capture = self._amazon.get_capture_details(amazon_capture_id, seller_id=seller_id, deadline=deadline)
        for amazon_refund_id in capture.id_list:
            details = self._amazon.get_refund_details(
                amazon_refund_id, seller_id=seller_id, deadline=deadline
            )
            if details.refund_reference_id == refund_reference_id:
                return details
        return None

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        return self._amazon.get_capture_details(amazon_capture_id, seller_id=seller_id, deadline=deadline)

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        return self._amazon.get_refund_details(amazon_refund_id, seller_id=seller_id, deadline=deadline)


def _attempt_moved(transition: Transition, number: int) -> bool:
    """Whether the transition moved attempt `number` to another state (not merely recorded a report)."""
    if not transition.changed or transition.before is None:
        return False
    before, after = transition.before.attempt(number), transition.refund.attempt(number)
    return before is not None and after is not None and before.state is not after.state


def _submission_detail(refund: Refund) -> str:
    attempt = refund.latest_attempt
    if refund.status is RefundStatus.FAILED:
        return f"refused: {refund.reason_code}"
    if attempt.amazon_refund_id is None:
        reason = f" ({refund.reason_code})" if refund.reason_code else ""
        return f"now {refund.status.value}{reason}"
    reason = f" ({attempt.reason_code})" if attempt.reason_code else ""
    return f"Amazon has {attempt.amazon_refund_id}: {attempt.state.value}{reason}"


def _minutes(wait: timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _describe(error: Exception) -> str:
    code = getattr(error, "code", None)
    return f"{type(error).__name__}: {code}" if isinstance(code, str) else type(error).__name__
