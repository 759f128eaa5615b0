"""RetrySteps: the RetryWorkflow's Lambda steps (statemachine/retry.asl.json), one per `step` value.

Errors propagate on purpose: the state machine retries `AmazonPayUnavailable` and `StoreUnavailable` (by
their class names) and sends anything else to its final Catch (manual action, "retry workflow failed").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import observability
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.use_cases.retries import RetrySteps, StepResult
from amazon_pay_refunds.use_cases.submission import deadline_for

logger, tracer, metrics = observability.handler_telemetry()


@cache
def retry_steps() -> RetrySteps:
    return lambda_services(on_amazon_error=observability.count_amazon_error).retry_steps()


class UnknownStep(ValueError):
    """The state machine asked for a step this function does not have."""


@dataclass(frozen=True)
class StepInput:
    """The state machine's input to a step (statemachine/retry.asl.json), typed; a missing or mistyped
    field raises (KeyError, ValueError), which the state machine's final Catch hands to a person."""

    step: str
    refund_id: str
    attempt: int | None = None
    declined_attempt: int | None = None
    task_token: str | None = None
    polls: int = 0
    reason: str | None = None
    cause: str | None = None

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> StepInput:
        def number(name: str) -> int | None:
            return int(event[name]) if event.get(name) is not None else None

        return cls(
            step=str(event.get("step")),
            refund_id=str(event["refund_id"]),
            attempt=number("attempt"),
            declined_attempt=number("declined_attempt"),
            task_token=str(event["task_token"]) if event.get("task_token") is not None else None,
            polls=int(event.get("polls") or 0),
            reason=str(event["reason"]) if event.get("reason") is not None else None,
            cause=str(event.get("cause") or "retry:workflow"),
        )

    def required(self, value: Any, name: str) -> Any:
        if value is None:
            raise KeyError(f"the {self.step} step needs {name}")
        return value


def _run(step: StepInput, context: LambdaContext) -> StepResult:
    steps = retry_steps()

    def deadline() -> float:
        return deadline_for(context.get_remaining_time_in_millis())

    def attempt() -> int:
        return int(step.required(step.attempt, "attempt"))

    handlers: dict[str, Callable[[], StepResult]] = {
        "check_eligibility": lambda: steps.check_eligibility(
            step.refund_id, step.required(step.declined_attempt, "declined_attempt"), deadline=deadline()
        ),
        "start_attempt": lambda: steps.start_attempt(step.refund_id, attempt(), deadline=deadline()),
        "await_outcome": lambda: steps.await_outcome(
            step.refund_id, attempt(), step.required(step.task_token, "task_token")
        ),
        "poll_outcome": lambda: steps.poll_outcome(
            step.refund_id, attempt(), step.polls, deadline=deadline()
        ),
        "require_manual_action": lambda: steps.require_manual_action(
            step.refund_id, step.required(step.reason, "reason"), step.cause or "retry:workflow"
        ),
    }
    if step.step not in handlers:
        raise UnknownStep(f"no retry step {step.step!r}")
    return handlers[step.step]()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> StepResult:
    logger.append_keys(refund_id=event.get("refund_id"), step=event.get("step"), attempt=event.get("attempt"))
    result = _run(StepInput.of(event), context)
    logger.info("retry step done", extra={"result": result})
    return result
