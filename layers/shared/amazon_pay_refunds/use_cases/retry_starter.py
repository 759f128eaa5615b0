"""RetryStarter: one `Refund Declined` event (ProcessingFailure, RetryScheduled) → one execution of the
RetryWorkflow state machine, named after the declined attempt, so a duplicate event starts nothing
(ExecutionAlreadyExists counts as started). The timings the workflow waits with are set here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from amazon_pay_refunds.core.retry_eligibility import declined_attempt_to_retry
from amazon_pay_refunds.ports import WorkflowStarter

# Execution names: 1-80 characters, none of whitespace, < > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /
_NAME_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
MAX_EXECUTION_NAME = 80


@dataclass(frozen=True)
class RetryTiming:
    """How long the workflow waits: before the retry (RETRY_DELAY_SECONDS), for the IPN, between polls.

    Without an IPN after `outcome_timeout_seconds`, the attempt is polled up to `max_polls` times, every
    `poll_interval_seconds`; still Pending then, it is left to the reconciler (it polls Pending refunds).
    """

    retry_delay_seconds: int
    outcome_timeout_seconds: int = 900
    poll_interval_seconds: int = 300
    max_polls: int = 6

    def __post_init__(self) -> None:
        if self.retry_delay_seconds < 0 or self.poll_interval_seconds < 0 or self.max_polls < 0:
            raise ValueError("retry timings must not be negative")
        if self.outcome_timeout_seconds < 1:
            raise ValueError("outcome_timeout_seconds must be at least 1")


def execution_name(refund_id: str, declined_attempt: int) -> str:
    """`{refund_id}-attempt-{n}`, within Step Functions' name rules: one execution per declined attempt."""
    suffix = f"-attempt-{declined_attempt}"
    base = _NAME_FORBIDDEN.sub("-", refund_id) or "refund"
    return base[: MAX_EXECUTION_NAME - len(suffix)] + suffix


def execution_input(refund_id: str, declined_attempt: int, timing: RetryTiming) -> dict[str, Any]:
    """The RetryWorkflow's input (statemachine/retry.asl.json reads every field)."""
    return {
        "refund_id": refund_id,
        "declined_attempt": declined_attempt,
        "attempt": declined_attempt + 1,
        "retry_delay_seconds": timing.retry_delay_seconds,
        "outcome_timeout_seconds": timing.outcome_timeout_seconds,
        "poll_interval_seconds": timing.poll_interval_seconds,
        "max_polls": timing.max_polls,
        "poll": {"polls": 0},
    }


@dataclass(frozen=True)
class StartResult:
    """`started`, `already_started` (a duplicate event) or `ignored` (no retry asked for)."""

    outcome: Literal["started", "already_started", "ignored"]
    refund_id: str | None = None
    execution_name: str | None = None
    execution_arn: str | None = None


class RetryStarter:
    """`Refund Declined` (ProcessingFailure, RetryScheduled) → one RetryWorkflow execution."""

    def __init__(self, stepfunctions: WorkflowStarter, state_machine_arn: str, timing: RetryTiming) -> None:
        self._stepfunctions = stepfunctions
        self._state_machine_arn = state_machine_arn
        self._timing = timing

    def start(self, detail: Mapping[str, Any]) -> StartResult:
        declined = declined_attempt_to_retry(detail)
        if declined is None:
            return StartResult("ignored", detail.get("refund_id"))
        refund_id = str(detail["refund_id"])
        name = execution_name(refund_id, declined)
        try:
            answer = self._stepfunctions.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=name,
                input=json.dumps(execution_input(refund_id, declined, self._timing), separators=(",", ":")),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return StartResult("already_started", refund_id, name)
            raise
        return StartResult("started", refund_id, name, str(answer.get("executionArn", "")) or None)
