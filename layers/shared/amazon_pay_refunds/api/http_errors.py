"""Every error the storefront API can answer, mapped to HTTP in this one place.

The body is always `{"error": {"code", "message", "details"}}` (CONTRACT §3) — never Powertools' default
bodies, never internals (exception text, stack traces, Amazon's credentials).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from amazon_pay_refunds.api.request_bodies import UnsupportedMediaType
from amazon_pay_refunds.config import ConfigurationError, CredentialsNotConfigured
from amazon_pay_refunds.use_cases.errors import (
    AmazonRefused,
    CaptureNotFound,
    CaptureNotRefundable,
    IdempotencyConflict,
    InvalidRefundState,
    RefundNotFound,
    RefundServiceError,
    ReservationRefused,
    ServiceBusy,
    UnknownSeller,
)

STATUS_OF: Mapping[type[RefundServiceError], HTTPStatus] = {
    UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    IdempotencyConflict: HTTPStatus.CONFLICT,
    InvalidRefundState: HTTPStatus.CONFLICT,
    RefundNotFound: HTTPStatus.NOT_FOUND,
    CaptureNotFound: HTTPStatus.NOT_FOUND,
    UnknownSeller: HTTPStatus.UNPROCESSABLE_ENTITY,
    CaptureNotRefundable: HTTPStatus.UNPROCESSABLE_ENTITY,
    ReservationRefused: HTTPStatus.UNPROCESSABLE_ENTITY,  # RefundExceedsCapture, CurrencyMismatch
    AmazonRefused: HTTPStatus.UNPROCESSABLE_ENTITY,  # Amazon's own permanent error code
    ServiceBusy: HTTPStatus.SERVICE_UNAVAILABLE,
}

VALIDATION_ERROR = "ValidationError"
MALFORMED_REQUEST = "MalformedRequest"
ROUTE_NOT_FOUND = "NotFound"
INTERNAL_ERROR = "InternalError"
SERVICE_NOT_CONFIGURED = "ServiceNotConfigured"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(error: Exception) -> Response[Any]:
    """The API's answer to `error`; anything unforeseen is a 500 `InternalError` that reveals nothing."""
    if isinstance(error, RefundServiceError):
        return _respond(_status_of(error), error.code, error.message, error.details)
    if isinstance(error, RequestUnsupportedContentType):
        return error_response(UnsupportedMediaType("another type"))
    if isinstance(error, RequestValidationError):
        return validation_response(error.errors())
    if isinstance(error, CredentialsNotConfigured):
        return _respond(
            HTTPStatus.SERVICE_UNAVAILABLE,
            SERVICE_NOT_CONFIGURED,
            "the service is not configured yet: its Amazon Pay credentials secret has no value, or not the "
            "documented JSON (docs/DEPLOY.md); nothing was stored, repeat the request once it is",
        )
    if isinstance(error, ConfigurationError):
        return _respond(
            HTTPStatus.SERVICE_UNAVAILABLE,
            SERVICE_NOT_CONFIGURED,
            "the service's deployment is misconfigured; nothing was stored, repeat the request later",
        )
    if isinstance(error, NotFoundError):
        return _respond(HTTPStatus.NOT_FOUND, ROUTE_NOT_FOUND, "no such resource or method")
    return _respond(
        HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR, "internal error; the request may be repeated"
    )


def validation_response(errors: Sequence[Mapping[str, Any]]) -> Response[Any]:
    """400 when the body is not JSON at all; 422 `ValidationError` naming each field otherwise."""
    for invalid in (e for e in errors if e.get("type") == "json_invalid"):
        why = str((invalid.get("ctx") or {}).get("error") or "not parseable")
        message = f"the body is not valid JSON ({why}); nothing was stored"
        return _respond(HTTPStatus.BAD_REQUEST, MALFORMED_REQUEST, message)
    details = [{"field": _field_name(e.get("loc", ())), "issue": _issue(e)} for e in errors]
    fields = ", ".join(sorted({d["field"] for d in details}))
    return _respond(HTTPStatus.UNPROCESSABLE_ENTITY, VALIDATION_ERROR, f"invalid request: {fields}", details)


def _status_of(error: RefundServiceError) -> HTTPStatus:
    return next(status for kind, status in STATUS_OF.items() if isinstance(error, kind))


def _issue(error: Mapping[str, Any]) -> str:
    """pydantic's message, without the "Value error, " it puts before our own validators' messages."""
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def refund_request_refusal(error: RefundServiceError, refund_id: str) -> RefundServiceError:
    """A refusal of POST /refunds, saying whether `refund_id` is used up (CONTRACT §3, one rule).

    Used up when the refund was stored (its reservation was taken), which only an Amazon refusal carrying
    the stored refund (now Failed) shows; every other refusal stored nothing. Conflicts (409, about the
    refund that owns the id) and 5xx (nothing changed; repeat) are returned as they are.
    """
    if _status_of(error) is not HTTPStatus.UNPROCESSABLE_ENTITY:
        return error
    stored = isinstance(error, AmazonRefused) and error.refund is not None
    details = dict(error.details or {})
    details["refund_id_reusable"] = not stored
    error.details = details
    if stored:
        error.message += f"; refund {refund_id} is stored as Failed: correct it under a new refund_id"
    else:
        error.message += f"; nothing was stored: refund_id {refund_id} may be sent again"
    return error


def _field_name(loc: Sequence[Any]) -> str:
    """("body", "metadata", "k") → "metadata.k"; the whole body → "body"."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def _respond(status: HTTPStatus, code: str, message: str, details: Any = None) -> Response[Any]:
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=error_body(code, message, details),
    )
