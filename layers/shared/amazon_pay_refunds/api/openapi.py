"""OpenAPI descriptions of the refund API's answers: each route's own, plus those every route can give
(API Gateway's own refusals, and the 5xx). docs/openapi.json is generated from the routes that use them.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from amazon_pay_refunds.api.models import ErrorBody


def documented(description: str, model: type[Any] = ErrorBody) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


def answers(routes_own: dict[int, OpenAPIResponse], *, body: bool) -> dict[int, OpenAPIResponse]:
    """A route's own answers plus those every route can give (API Gateway's, and the 5xx)."""
    answers: dict[int, OpenAPIResponse] = {
        403: documented(
            "API Gateway: INVALID_API_KEY (no or a wrong x-api-key), or MISSING_AUTHENTICATION_TOKEN "
            "(no such route or method)"
        ),
        429: documented("API Gateway: THROTTLED or QUOTA_EXCEEDED (the usage plan); repeat later"),
        500: documented("InternalError: reveals nothing; repeating the same request is safe"),
        502: documented("API Gateway: the function failed (timeout, out of memory); repeat the same request"),
        503: documented(
            "ServiceBusy (the store is throttled) or ServiceNotConfigured (the credentials secret has no "
            "value yet): nothing changed; repeat the same request later"
        ),
        504: documented("API Gateway: INTEGRATION_TIMEOUT; repeat the same request"),
    }
    if body:
        answers |= {
            400: documented(
                "MalformedRequest: not JSON, or JSON with duplicate keys, numbers, nesting no request has"
            ),
            413: documented("API Gateway: REQUEST_TOO_LARGE (over 10 MB)"),
            415: documented("UnsupportedMediaType: the body must be application/json"),
        }
    return dict(sorted({**answers, **routes_own}.items()))
