"""AmazonPayError: every way an Amazon Pay v1 call can fail, as one value a caller can act on."""

from __future__ import annotations

from typing import Any

from ...deadlines import AmazonCallError

# Amazon's own transient codes (the official SDKs and Amazon's guide: retry these with backoff).
AMAZON_RETRYABLE_CODES = frozenset(
    {"InternalServerError", "InternalError", "RequestThrottled", "QuotaExceeded", "ServiceUnavailable"}
)

# Our codes for failures where no answer from Amazon was read; the call's outcome is unknown, and
# re-sending it is safe because Amazon is idempotent on an unchanged RefundReferenceId.
REQUEST_TIMEOUT = "RequestTimeout"
CONNECTION_ERROR = "ConnectionError"
MALFORMED_RESPONSE = "MalformedResponse"
TRANSPORT_CODES = frozenset({REQUEST_TIMEOUT, CONNECTION_ERROR, MALFORMED_RESPONSE})


def is_retryable(code: str, http_status: int | None) -> bool:
    """4xx never; any 5xx (500/503 are Amazon's; 502/504 come from gateways); else by code."""
    if http_status is not None and 400 <= http_status < 500:
        return False
    if http_status is not None and 500 <= http_status < 600:
        return True
    return code in AMAZON_RETRYABLE_CODES or code in TRANSPORT_CODES


class AmazonPayError(AmazonCallError):
    """An Amazon Pay v1 call that failed: Amazon's ErrorResponse, or a transport or parsing failure.

    ``error_type`` is Amazon's ``Type`` (``Sender``, ``Receiver``, or ``""`` when sent empty; ``None``
    when absent). ``retryable`` says whether sending the same call again may succeed. ``message`` is kept
    whole here; `AmazonPayClient` redacts the call's secrets from it and then bounds it (`deadlines.redact`).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.error_type = error_type
        self.retryable = is_retryable(code, http_status) if retryable is None else retryable
        super().__init__(code, self.message)

    def with_changes(self, **changes: Any) -> AmazonPayError:
        """A copy with some attributes replaced (e.g. a message with secrets redacted)."""
        fields: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "http_status": self.http_status,
            "request_id": self.request_id,
            "error_type": self.error_type,
            "retryable": self.retryable,
        }
        fields.update(changes)
        code = fields.pop("code")
        message = fields.pop("message")
        return AmazonPayError(code, message, **fields)

    def with_message(self, message: str) -> AmazonPayError:
        return self.with_changes(message=message)

    def __str__(self) -> str:
        context = [f"HTTP {self.http_status}" if self.http_status is not None else "no HTTP answer"]
        if self.error_type:
            context.append(self.error_type)
        if self.request_id:
            context.append(f"request id {self.request_id}")
        return f"{self.code} ({', '.join(context)}): {self.message}"

    def __repr__(self) -> str:
        return (
            f"AmazonPayError(code={self.code!r}, http_status={self.http_status!r}, "
            f"request_id={self.request_id!r}, error_type={self.error_type!r}, "
            f"retryable={self.retryable!r}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.code, self.message, self.http_status, self.request_id, self.error_type,
                           self.retryable))  # fmt: skip


def _rebuild(
    code: str,
    message: str,
    http_status: int | None,
    request_id: str | None,
    error_type: str | None,
    retryable: bool,
) -> AmazonPayError:
    return AmazonPayError(
        code,
        message,
        http_status=http_status,
        request_id=request_id,
        error_type=error_type,
        retryable=retryable,
    )
