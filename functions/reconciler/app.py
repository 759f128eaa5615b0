"""Reconciler: every few minutes (EventBridge schedule), one bounded reconciliation pass (CONTRACT §6).

The use case lives in `amazon_pay_refunds.use_cases.reconciliation`; this module runs one pass within the
invocation's remaining time and publishes what it found as CloudWatch metrics (EMF): the age of the oldest
open refund, open refunds by status, refunds waiting for manual action, and the work done.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import observability
from amazon_pay_refunds.adapters.mws.client import deadline_in
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.use_cases.reconciliation import Reconciler, ReconciliationReport

logger, tracer, metrics = observability.handler_telemetry()

# Refunds acted on per run (Amazon calls stay well inside its quotas); the rest waits for the next run.
MAX_ACTIONS_PER_RUN = 25
# Kept back from the invocation's remaining time for recording the last answer and the metrics.
SAFETY_MARGIN_SECONDS = 5.0


def reconciler() -> Reconciler:
    """The reconciler, from the composition root (the container's cached adapters; tests replace this)."""
    return lambda_services(on_amazon_error=observability.count_amazon_error).reconciler()


def publish_metrics(report: ReconciliationReport) -> None:
    """The alarms' metrics (service dimension only) and the open refunds per status."""
    stats = report.stats
    metrics.add_metric(
        name="OldestOpenRefundAgeSeconds", unit=MetricUnit.Seconds, value=stats.oldest_age_seconds
    )
    metrics.add_metric(
        name="ManualActionRequiredRefunds", unit=MetricUnit.Count, value=stats.manual_action_required
    )
    metrics.add_metric(name="RetryScheduledOverdue", unit=MetricUnit.Count, value=len(report.retry_overdue))
    metrics.add_metric(name="RefundsSubmitted", unit=MetricUnit.Count, value=report.submitted)
    metrics.add_metric(name="RefundsPolled", unit=MetricUnit.Count, value=report.polled)
    metrics.add_metric(name="RefundsAdvanced", unit=MetricUnit.Count, value=report.advanced)
    metrics.add_metric(name="ReconcileFailures", unit=MetricUnit.Count, value=report.failures)
    metrics.add_metric(name="ReconcileDeferred", unit=MetricUnit.Count, value=report.deferred)
    metrics.add_metric(
        name="OpenRefundsScanIncomplete", unit=MetricUnit.Count, value=int(not report.scan_complete)
    )
    for status, count in stats.by_status.items():
        with single_metric(
            name="OpenRefunds",
            unit=MetricUnit.Count,
            value=count,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="status", value=status.value)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    report = reconciler().run(deadline=deadline_in(max(remaining, 0.0)), limit=MAX_ACTIONS_PER_RUN)
    publish_metrics(report)
    summary = {k: v for k, v in report.to_dict().items() if k != "actions"}
    logger.info("reconciliation done", extra=summary)
    for action in report.actions:
        logger.info("reconciled refund %s", action.refund_id, extra=action.to_dict())
    return summary
