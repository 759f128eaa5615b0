"""What every handler reports the same way: Amazon Pay errors as metrics, the library's logs as JSON lines.

Metrics are CloudWatch EMF through Powertools: namespace `POWERTOOLS_METRICS_NAMESPACE`, and Powertools adds
the `service` dimension (`POWERTOOLS_SERVICE_NAME`) to each. The dashboard and alarms in template.yaml read
these names (tests/infrastructure/test_operability.py checks them against the code).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from .adapters.mws.errors import AmazonPayError
from .config import running_in_lambda

LIBRARY_LOGGER = "amazon_pay_refunds"


def count_amazon_error(operation: str, error: AmazonPayError) -> None:
    """`AmazonErrors` by `operation` and `code` (the dashboard); `AmazonTransientErrors` (service only: the
    alarm) when the failure is Amazon's or the network's (5xx, throttling, timeouts), not a refusal."""
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
