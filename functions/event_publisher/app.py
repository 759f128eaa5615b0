"""EventPublisher: the refunds table's stream → EventBridge (one event per stored transition)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import runtime
from amazon_pay_refunds.events import publish_stream_records

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    result = publish_stream_records(runtime.events_client(), runtime.settings().event_bus_name, records)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
    if result.failed:
        metrics.add_metric(name="EventPublishFailures", unit=MetricUnit.Count, value=len(result.failed))
        logger.warning("events not published; the stream will redeliver", extra={"records": result.failed})
    # ReportBatchItemFailures: the stream retries from the first failed record.
    return {"batchItemFailures": [{"itemIdentifier": sequence_number} for sequence_number in result.failed]}
