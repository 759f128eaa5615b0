"""RetrySteps: the RetryWorkflow's Lambda steps (statemachine/retry.asl.json), one per `step` value.

Errors propagate on purpose: the state machine retries `AmazonPayUnavailable` and `StoreUnavailable` (by
their class names) and sends anything else to its final Catch (manual action, "retry workflow failed").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import observability
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.use_cases.refund_requests import deadline_for
from amazon_pay_refunds.use_cases.retries import RetrySteps, StepResult

logger = Logger()
tracer = Tracer()
metrics = Metrics()
observability.structured_library_logs(logger)
warnings.filterwarnings("ignore", message="No application metrics to publish")


def count_amazon_error(operation: str, error: AmazonPayError) -> None:
    logger.warning("Amazon Pay %s failed", operation, extra={"amazon_error_code": error.code})
    observability.count_amazon_error(operation, error)


@cache
def retry_steps() -> RetrySteps:
    return RetrySteps.from_runtime(on_amazon_error=count_amazon_error)


class UnknownStep(ValueError):
    """The state machine asked for a step this function does not have."""


def _run(event: dict[str, Any], context: LambdaContext) -> StepResult:
    steps = retry_steps()
    refund_id = str(event["refund_id"])

    def deadline() -> float:
        return deadline_for(context.get_remaining_time_in_millis())

    handlers: dict[str, Callable[[], StepResult]] = {
        "check_eligibility": lambda: steps.check_eligibility(
            refund_id, int(event["declined_attempt"]), deadline=deadline()
        ),
        "start_attempt": lambda: steps.start_attempt(refund_id, int(event["attempt"]), deadline=deadline()),
        "await_outcome": lambda: steps.await_outcome(
            refund_id, int(event["attempt"]), str(event["task_token"])
        ),
        "poll_outcome": lambda: steps.poll_outcome(
            refund_id, int(event["attempt"]), int(event.get("polls", 0)), deadline=deadline()
        ),
        "require_manual_action": lambda: steps.require_manual_action(
            refund_id, str(event["reason"]), str(event.get("cause") or "retry:workflow")
        ),
    }
    step = str(event.get("step"))
    if step not in handlers:
        raise UnknownStep(f"no retry step {step!r}")
    return handlers[step]()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> StepResult:
    logger.append_keys(refund_id=event.get("refund_id"), step=event.get("step"), attempt=event.get("attempt"))
    result = _run(event, context)
    logger.info("retry step done", extra={"result": result})
    return result
