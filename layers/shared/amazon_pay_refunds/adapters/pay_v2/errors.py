"""PayV2Error and its kinds: every way an Amazon Pay API v2 call can fail, typed so a caller can act on it.

Amazon answers errors as JSON ``{"reasonCode", "message"}`` with the request id in the
``x-amz-pay-request-id`` header. Retryable (by the client, within the caller's deadline): HTTP 408, 425,
429 and 5xx, as the PHP and Java SDKs retry them, and failures where no answer was read (the outcome is
unknown; a Create Refund re-sent with the same idempotency key and body cannot refund twice).
"""

from __future__ import annotations

from typing import Any

from ...deadlines import AmazonCallError

RETRYABLE_STATUSES = frozenset({408, 425, 429})
REQUEST_TIMEOUT = "RequestTimeout"
CONNECTION_ERROR = "ConnectionError"
MALFORMED_RESPONSE = "MalformedResponse"


def is_retryable_status(http_status: int | None) -> bool:
    return http_status is not None and (http_status in RETRYABLE_STATUSES or 500 <= http_status < 600)


class PayV2Error(AmazonCallError):
    """A failed v2 call: Amazon's reason code and message, the HTTP status and request id when known.

    ``message`` is kept whole here; `PayV2Client` redacts the call's secrets from it and then bounds it
    (`deadlines.redact`; cutting first could leave a part of a secret that redaction no longer recognises)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.retryable = is_retryable_status(http_status) if retryable is None else retryable
        super().__init__(code, self.message)

    def with_message(self, message: str) -> PayV2Error:
        """A copy of the same kind with another message (e.g. with secrets redacted)."""
        return type(self)(
            self.code,
            message,
            http_status=self.http_status,
            request_id=self.request_id,
            retryable=self.retryable,
        )

    def __str__(self) -> str:
        context = f"HTTP {self.http_status}" if self.http_status is not None else "no HTTP answer"
        if self.request_id:
            context += f", request id {self.request_id}"
        return f"{self.code} ({context}): {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status!r}, "
            f"request_id={self.request_id!r}, retryable={self.retryable!r}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.code, self.message, self.http_status, self.request_id,
                           self.retryable))  # fmt: skip


def _rebuild(
    kind: type[PayV2Error], code: str, message: str, http_status: int | None, request_id: str | None,
    retryable: bool,
) -> PayV2Error:  # fmt: skip
    return kind(code, message, http_status=http_status, request_id=request_id, retryable=retryable)


class PayV2TransportError(PayV2Error):
    """No answer was read (timeout, connection failure) or a 2xx could not be read: the outcome is unknown."""


class PayV2RequestRejected(PayV2Error):
    """A 4xx: the request as sent will never succeed (except 408/425/429, see `PayV2Throttled`)."""


class PayV2AuthenticationError(PayV2RequestRejected):
    """Key or signature refused: InvalidRequestSignature, UnauthorizedAccess, InvalidAuthentication."""


class PayV2NotFound(PayV2RequestRejected):
    """ResourceNotFound: no such charge or refund for this merchant (and environment)."""


class DuplicateIdempotencyKey(PayV2RequestRejected):
    """The idempotency key was used before with other values: nothing was created by this request."""


class TransactionAmountExceeded(PayV2RequestRejected):
    """The refund would exceed the charge's captured amount plus Amazon's over-refund allowance."""


class InvalidChargeStatus(PayV2RequestRejected):
    """The charge is in a state that does not allow this (e.g. a refund of a charge not Captured)."""


class PayV2Throttled(PayV2Error):
    """429 (or 408/425): try again later; retryable."""


class PayV2ServerError(PayV2Error):
    """5xx: Amazon's side failed; retryable with the same idempotency key."""


_BY_CODE: dict[str, type[PayV2Error]] = {
    "InvalidRequestSignature": PayV2AuthenticationError,
    "UnauthorizedAccess": PayV2AuthenticationError,
    "InvalidAuthentication": PayV2AuthenticationError,
    "ResourceNotFound": PayV2NotFound,
    "DuplicateIdempotencyKey": DuplicateIdempotencyKey,
    "TransactionAmountExceeded": TransactionAmountExceeded,
    "InvalidChargeStatus": InvalidChargeStatus,
}


def error_for(code: str, message: str, http_status: int, request_id: str | None) -> PayV2Error:
    """The typed error of an HTTP error answer: by status first (retryable ones), then by reason code."""
    kind: type[PayV2Error]
    if http_status in RETRYABLE_STATUSES:
        kind = PayV2Throttled
    elif 500 <= http_status < 600:
        kind = PayV2ServerError
    elif 400 <= http_status < 500:
        kind = _BY_CODE.get(code, PayV2RequestRejected)
    else:
        kind = PayV2Error
    return kind(code, message, http_status=http_status, request_id=request_id)
