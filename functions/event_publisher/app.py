"""EventPublisher: the refunds table's stream → EventBridge (one event per stored transition)."""

from __future__ import annotations

from functools import cache
from typing import Any, TypedDict

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import observability
from amazon_pay_refunds.composition import Services, lambda_services

logger, tracer, metrics = observability.handler_telemetry()


class StreamEvent(TypedDict):
    """A DynamoDB stream batch (the records are read by `events.events_from_stream_record`)."""

    Records: list[dict[str, Any]]


@cache
def services() -> Services:
    return lambda_services()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: StreamEvent, context: LambdaContext) -> dict[str, Any]:
    result = services().publish_stream_records(event.get("Records", []))
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
    if result.failed:
        metrics.add_metric(name="EventPublishFailures", unit=MetricUnit.Count, value=len(result.failed))
        logger.warning("events not published; the stream will redeliver", extra={"records": result.failed})
    # ReportBatchItemFailures: the stream retries from the first failed record.
    return {"batchItemFailures": [{"itemIdentifier": sequence_number} for sequence_number in result.failed]}
