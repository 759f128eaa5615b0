"""RetryStarter: `Refund Declined` (ProcessingFailure, RetryScheduled) → one RetryWorkflow execution.

The EventBridge rule in template.yaml routes only those events here; the execution is named after the
declined attempt, so a duplicate event starts nothing (use_cases/retry_starter.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, TypedDict

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import observability
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.use_cases.retry_starter import RetryStarter

logger, tracer, metrics = observability.handler_telemetry()


class RefundDeclinedEvent(TypedDict, total=False):
    """The EventBridge event; `detail` is the refund resource with `reason_code` and `event_id`."""

    detail: Mapping[str, Any]


@cache
def retry_starter() -> RetryStarter:
    """The container's starter: the state machine (RETRY_WORKFLOW_ARN) and the delay from the settings."""
    return lambda_services().retry_starter()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: RefundDeclinedEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") or {}
    logger.append_keys(refund_id=detail.get("refund_id"), event_id=detail.get("event_id"))
    result = retry_starter().start(detail)
    if result.outcome == "started":
        metrics.add_metric(name="RetryWorkflowStarted", unit=MetricUnit.Count, value=1)
    logger.info("retry " + result.outcome, extra={"execution_name": result.execution_name})
    return {"outcome": result.outcome, "execution_name": result.execution_name}
