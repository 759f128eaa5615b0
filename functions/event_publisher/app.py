"""EventPublisher: the refunds table's stream → EventBridge (one event per stored transition)."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds.events import publish_stream_records

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@cache
def events_client() -> EventBridgeClient:
    return boto3.client("events")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    result = publish_stream_records(events_client(), os.environ["EVENT_BUS_NAME"], records)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
    if result.failed:
        metrics.add_metric(name="EventPublishFailures", unit=MetricUnit.Count, value=len(result.failed))
        logger.warning("events not published; the stream will redeliver", extra={"records": result.failed})
    # ReportBatchItemFailures: the stream retries from the first failed record.
    return {"batchItemFailures": [{"itemIdentifier": sequence_number} for sequence_number in result.failed]}
