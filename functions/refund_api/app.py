"""RefundApi: request, read and resolve refunds, read a capture's ledger (CONTRACT §3).

Thin: each route validates its input (pydantic, through Powertools), makes one call into
`use_cases.refund_requests`, and answers the resource. Every error is answered by `api.http_errors`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amazon_pay_refunds import observability
from amazon_pay_refunds.api.http_errors import error_response, refund_request_refusal
from amazon_pay_refunds.api.models import (
    CaptureLedgerResource,
    RefundRequestBody,
    RefundResource,
    ResolveRequestBody,
    to_refund_request,
)
from amazon_pay_refunds.api.openapi import answers, documented
from amazon_pay_refunds.api.request_bodies import content_type_refusal, strict_json_loads
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.core.models import PaymentApi
from amazon_pay_refunds.use_cases.errors import RefundServiceError
from amazon_pay_refunds.use_cases.refund_requests import RefundService
from amazon_pay_refunds.use_cases.submission import deadline_for

logger, tracer, metrics = observability.handler_telemetry()
# Bodies are parsed strictly (duplicate keys, deep nesting, huge numbers → 400 MalformedRequest).
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=strict_json_loads)

RefundId = Annotated[str, Path(description="The client's refund_id.")]
CaptureId = Annotated[str, Path(description="Amazon's capture id.")]
ChargeId = Annotated[str, Path(description="Amazon Pay API v2 charge id.")]


def refund_service() -> RefundService:
    """The use case, from the composition root (the container's cached adapters; tests replace this to
    inject faults)."""
    return lambda_services(on_amazon_error=observability.count_amazon_error).refund_requests()


@app.post(
    "/refunds",
    summary="Request a refund",
    responses=answers(
        {
            202: documented("Accepted: Pending, or Requested when Amazon is unreachable", RefundResource),
            200: documented("The same request again: the refund as it is now", RefundResource),
            409: documented(
                "IdempotencyConflict: this refund_id belongs to a refund requested with another body; "
                "details.status is that refund's status (a new refund needs a new refund_id)"
            ),
            422: documented(
                "ValidationError (nothing stored); UnknownSeller, CaptureNotRefundable, "
                "RefundExceedsCapture, CurrencyMismatch or Amazon's own permanent error code, with "
                "details.refund_id_reusable: "
                "false only when the refund was stored (details.refund, status Failed)",
            ),
        },
        body=True,
    ),
)
def create_refund(body: RefundRequestBody) -> Response[RefundResource]:
    logger.append_keys(refund_id=body.refund_id)
    deadline = deadline_for(app.lambda_context.get_remaining_time_in_millis())
    try:
        outcome = refund_service().request_refund(to_refund_request(body, caller()), deadline=deadline)
    except RefundServiceError as refused:
        raise refund_request_refusal(refused, body.refund_id) from None
    if outcome.created:
        metrics.add_metric(name="RefundsRequested", unit=MetricUnit.Count, value=1)
    status = HTTPStatus.ACCEPTED if outcome.created else HTTPStatus.OK
    logger.info(
        "refund %s", "accepted" if outcome.created else "replayed", extra={"status": outcome.refund.status}
    )
    return _resource(status, outcome.refund.to_resource())


@app.get(
    "/refunds/<refund_id>",
    summary="Read a refund",
    responses=answers(
        {200: documented("The refund", RefundResource), 404: documented("RefundNotFound")}, body=False
    ),
)
def get_refund(refund_id: RefundId) -> Response[RefundResource]:
    logger.append_keys(refund_id=refund_id)
    return _resource(HTTPStatus.OK, refund_service().get_refund(refund_id).to_resource())


@app.get(
    "/captures/<amazon_capture_id>",
    summary="Read a capture's refund ledger",
    responses=answers(
        {
            200: documented("The capture's ledger", CaptureLedgerResource),
            404: documented("CaptureNotFound: no refund was requested on it"),
        },
        body=False,
    ),
)
def get_capture(amazon_capture_id: CaptureId) -> Response[CaptureLedgerResource]:
    logger.append_keys(amazon_capture_id=amazon_capture_id)
    return _resource(HTTPStatus.OK, refund_service().get_ledger(amazon_capture_id).to_resource())


@app.get(
    "/charges/<amazon_charge_id>",
    summary="Read an Amazon Pay API v2 charge's refund ledger",
    responses=answers(
        {
            200: documented("The charge's ledger", CaptureLedgerResource),
            404: documented("CaptureNotFound: no refund was requested on it"),
        },
        body=False,
    ),
)
def get_charge(amazon_charge_id: ChargeId) -> Response[CaptureLedgerResource]:
    logger.append_keys(amazon_charge_id=amazon_charge_id)
    ledger = refund_service().get_ledger(amazon_charge_id, PaymentApi.V2)
    return _resource(HTTPStatus.OK, ledger.to_resource())


@app.post(
    "/refunds/<refund_id>/resolve",
    summary="Mark a ManualActionRequired refund as refunded another way",
    responses=answers(
        {
            200: documented("ResolvedOutOfBand", RefundResource),
            404: documented("RefundNotFound"),
            409: documented("InvalidRefundState: the refund is not ManualActionRequired"),
            422: documented("ValidationError"),
        },
        body=True,
    ),
)
def resolve_refund(refund_id: RefundId, body: ResolveRequestBody) -> Response[RefundResource]:
    logger.append_keys(refund_id=refund_id)
    refund = refund_service().resolve(refund_id, body.method, body.note, caller=caller())
    logger.info("refund resolved out of band", extra={"method": body.method})
    return _resource(HTTPStatus.OK, refund.to_resource())


def require_json_body(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A body that validated as a form is still not JSON: 415 (validation failures: see answer_error)."""
    refusal = content_type_refusal(app.current_event.http_method, app.current_event.headers)
    if refusal is not None:
        raise refusal
    return next_middleware(app)


app.use(middlewares=[require_json_body])


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def answer_error(error: Exception) -> Response[Any]:
    """The single place errors become answers (api.http_errors); 5xx never reveal internals.

    A body of another type than JSON is answered 415 whatever its parsing made of it.
    """
    unsupported = content_type_refusal(app.current_event.http_method, app.current_event.headers)
    response = error_response(unsupported or error)
    code = response.body["error"]["code"] if isinstance(response.body, dict) else "InternalError"
    if response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.exception("request failed", extra={"code": code})
    else:
        logger.info("request refused", extra={"code": code, "http_status": response.status_code})
        if app.current_event.http_method == "POST" and app.current_event.resource == "/refunds":
            with single_metric(
                name="RefundsRejected",
                unit=MetricUnit.Count,
                value=1,
                default_dimensions=metrics.default_dimensions,
            ) as metric:
                metric.add_dimension(name="code", value=code)
    return response


def _resource(status: HTTPStatus, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=int(status), content_type=content_types.APPLICATION_JSON, body=body)


def caller() -> str | None:
    """Who calls, as API Gateway authenticated them: the SigV4 signer's IAM ARN, else the API key's id
    (`api-key:{id}`; the key itself is a credential and is never recorded)."""
    identity = app.current_event.request_context.identity
    if identity.user_arn:
        return str(identity.user_arn)
    if identity.api_key_id:
        return f"api-key:{identity.api_key_id}"
    return None


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
