"""Retry eligibility (pure, Amazon's ProcessingFailure procedure): which declined attempt an event asks to
retry, and whether the capture still allows a retry. The RetryWorkflow's steps (use_cases/retries.py) and
its starter (use_cases/retry_starter.py) apply them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from amazon_pay_refunds.core.classification import REASON_A_TO_Z, forbids_retry
from amazon_pay_refunds.core.lifecycle import PROCESSING_FAILURE
from amazon_pay_refunds.core.models import AttemptState, RefundStatus
from amazon_pay_refunds.core.references import is_valid_refund_id

CAPTURE_COMPLETED = "Completed"


def declined_attempt_to_retry(detail: Mapping[str, Any]) -> int | None:
    """The attempt a `Refund Declined` event asks to retry, or None when it asks for no retry.

    Only a ProcessingFailure decline that left the refund `RetryScheduled` is retried (the rule matches
    exactly that; this check keeps a mis-routed event, e.g. AmazonRejected, out of the workflow).
    """
    if detail.get("reason_code") != PROCESSING_FAILURE:
        return None
    if detail.get("status") != RefundStatus.RETRY_SCHEDULED.value:
        return None
    if not is_valid_refund_id(detail.get("refund_id", "")):
        return None
    declined: list[int] = []
    for attempt in detail.get("attempts") or ():
        number = attempt.get("attempt") if isinstance(attempt, Mapping) else None
        if not isinstance(number, int) or isinstance(number, bool):
            continue
        state, reason = attempt.get("state"), attempt.get("reason_code")
        if state == AttemptState.DECLINED.value and reason == PROCESSING_FAILURE:
            declined.append(number)
    return max(declined) if declined else None


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str | None = None


def assess_eligibility(capture_state: str, other_refund_types: Iterable[str]) -> Eligibility:
    """Whether Amazon's procedure allows the retry: the capture (its CaptureStatus.State) still `Completed`,
    and no A-to-z Guarantee or chargeback refund among the capture's other refunds (`other_refund_types`:
    their RefundTypes; core/classification.py `forbids_retry`)."""
    reasons = [r for r in (forbids_retry(t) for t in other_refund_types) if r is not None]
    if REASON_A_TO_Z in reasons:
        return Eligibility(False, REASON_A_TO_Z)
    if reasons:
        return Eligibility(False, reasons[0])
    if capture_state != CAPTURE_COMPLETED:
        return Eligibility(False, f"Capture {capture_state}")
    return Eligibility(True)
