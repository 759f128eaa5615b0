"""RetryStarter: `Refund Declined` (ProcessingFailure, RetryScheduled) → one RetryWorkflow execution.

The EventBridge rule in template.yaml routes only those events here; the execution is named after the
declined attempt, so a duplicate event starts nothing (service/retries.py).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import runtime
from amazon_pay_refunds.use_cases.retries import RetryStarter, RetryTiming

logger = Logger()
tracer = Tracer()
metrics = Metrics()

STATE_MACHINE_ARN_VARIABLE = "RETRY_WORKFLOW_ARN"


@cache
def retry_starter() -> RetryStarter:
    """The container's starter: the state machine from the environment, the delay from the settings."""
    timing = RetryTiming(retry_delay_seconds=runtime.settings().retry_delay_seconds)
    return RetryStarter(runtime.stepfunctions_client(), os.environ[STATE_MACHINE_ARN_VARIABLE], timing)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = event.get("detail") or {}
    logger.append_keys(refund_id=detail.get("refund_id"), event_id=detail.get("event_id"))
    result = retry_starter().start(detail)
    if result.outcome == "started":
        metrics.add_metric(name="RetryWorkflowStarted", unit=MetricUnit.Count, value=1)
    logger.info("retry " + result.outcome, extra={"execution_name": result.execution_name})
    return {"outcome": result.outcome, "execution_name": result.execution_name}
