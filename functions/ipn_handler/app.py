"""IpnHandler: `POST /ipn` (API Gateway REST proxy) → verify the SNS post → act on the Amazon Pay IPN.

The use case lives in `amazon_pay_refunds.use_cases.notifications`; this module only adapts the proxy event
(raw body byte-exact, base64 when API Gateway says so, headers in any case), logs, counts and answers.
The service (and its verifier's certificate cache) is built once per warm container.
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import observability
from amazon_pay_refunds.adapters.sns import Reason
from amazon_pay_refunds.api.ipn_answers import CONFIGURATION_ERROR, INTERNAL_ERROR, IpnAnswer
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.config import ConfigurationError
from amazon_pay_refunds.use_cases.notifications import IpnService

logger, tracer, metrics = observability.handler_telemetry()

MESSAGE_ID_HEADER = "x-amz-sns-message-id"


@cache
def ipn_service() -> IpnService:
    """The container's service; a failed build (ConfigurationError) is retried on the next invocation."""
    return lambda_services(on_amazon_error=observability.count_amazon_error).ipn_service()


def request_headers(event: dict[str, Any]) -> dict[str, str] | None:
    """The request's headers; None when a repeated `x-amz-sns-*` header carries two different values."""
    headers = {str(k): v for k, v in (event.get("headers") or {}).items() if isinstance(v, str)}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if str(name).lower().startswith("x-amz-sns-") and len(set(values or ())) > 1:
            return None
    return headers


def request_body(event: dict[str, Any]) -> bytes | None:
    """The raw body as sent; None when a base64 body does not decode."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else None


def _response(answer: IpnAnswer) -> dict[str, Any]:
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(answer.body()),
    }


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _answer(event: dict[str, Any]) -> IpnAnswer:
    headers = request_headers(event)
    if headers is None:
        return IpnAnswer(403, Reason.HEADER_MISMATCH.value, fields={"detail": "an SNS header is repeated"})
    message_id = _header(headers, MESSAGE_ID_HEADER)
    if message_id:
        logger.set_correlation_id(message_id[:128])
    body = request_body(event)
    if body is None:
        return IpnAnswer(400, Reason.BODY_NOT_UTF8.value, fields={"detail": "the base64 body is invalid"})
    try:
        service = ipn_service()
    except ConfigurationError as error:
        logger.error("IPN handler misconfigured", extra={"detail": str(error)})
        return IpnAnswer(500, CONFIGURATION_ERROR)
    return IpnAnswer.of(service.handle(body, headers))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="IpnReceived", unit=MetricUnit.Count, value=1)
    try:
        answer = _answer(event)
    except Exception:
        logger.exception("IPN not processed; SNS will redeliver")
        answer = IpnAnswer(500, INTERNAL_ERROR)
    if answer.message_id:
        logger.set_correlation_id(answer.message_id)
    if answer.refund_id:
        logger.append_keys(refund_id=answer.refund_id)
    fields = {"reason": answer.reason, "status": answer.status, **answer.fields}
    if answer.notification_type:
        fields["notification_type"] = answer.notification_type
    if answer.accepted:
        logger.info("IPN accepted", extra=fields)
        metrics.add_metric(name="IpnAccepted", unit=MetricUnit.Count, value=1)
    else:
        log = logger.error if answer.transient else logger.warning
        log("IPN rejected", extra=fields)
        # The total (service only) is what the alarm watches; the per-reason count is for the dashboard.
        metrics.add_metric(name="IpnRejected", unit=MetricUnit.Count, value=1)
        with single_metric(name="IpnRejected", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="reason", value=answer.reason)
    return _response(answer)
