"""What every handler reports the same way: Amazon Pay errors as metrics, the library's logs as JSON lines.

Metrics are CloudWatch EMF through Powertools: namespace `POWERTOOLS_METRICS_NAMESPACE`, and Powertools adds
the `service` dimension (`POWERTOOLS_SERVICE_NAME`) to each. The dashboard and alarms in template.yaml read
these names (tests/infrastructure/test_operability.py checks them against the code).
"""

from __future__ import annotations

import logging
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from .config import running_in_lambda
from .ports import AmazonPayError

LIBRARY_LOGGER = "amazon_pay_refunds"
logger = logging.getLogger(__name__)


def handler_telemetry() -> tuple[Logger, Tracer, Metrics]:
    """Every handler's Logger, Tracer and Metrics, set up the same way: the library's log lines go out
    through the handler's logger (`structured_library_logs`), and Powertools' warning about an invocation
    that published no metric of its own (reads, refusals, most steps) is silenced. Each handler decorates
    its `lambda_handler` with `logger.inject_lambda_context(clear_state=True)`,
    `tracer.capture_lambda_handler` and `metrics.log_metrics` (tests/infrastructure/test_operability.py)."""
    handler_logger, tracer, metrics = Logger(), Tracer(), Metrics()
    structured_library_logs(handler_logger)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    return handler_logger, tracer, metrics


def count_amazon_error(operation: str, error: AmazonPayError) -> None:
    """`AmazonErrors` by `operation` and `code` (the dashboard); `AmazonTransientErrors` (service only: the
    alarm) when the failure is Amazon's or the network's (5xx, throttling, timeouts), not a refusal; and a
    warning log line with Amazon's code. The one observer of Amazon's errors every handler wires."""
    logger.warning("Amazon Pay %s failed", operation, extra={"amazon_error_code": error.code})
    with single_metric(name="AmazonErrors", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="operation", value=operation)
        metric.add_dimension(name="code", value=error.code)
    if error.retryable:
        with single_metric(name="AmazonTransientErrors", unit=MetricUnit.Count, value=1):
            pass


def structured_library_logs(logger: Logger) -> None:
    """In AWS Lambda, the library's `logging` lines go out through the handler's Powertools logger: JSON,
    with the keys the handler appended (refund_id, correlation_id, the Lambda context). Elsewhere (tests,
    the local stack) they stay with the root logger."""
    if running_in_lambda():
        copy_config_to_registered_loggers(source_logger=logger, include={LIBRARY_LOGGER})
