"""The refund service's named errors: what a caller may act on, each with a stable API `code`.

They carry no HTTP status: `service.http_errors` maps them to answers, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amazon_pay_refunds.core.models import Refund


class RefundServiceError(Exception):
    """Base: `code` names the error in the API's `{"error": {"code", "message", "details"}}`."""

    code = "RefundServiceError"

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details) if details else None


class IdempotencyConflict(RefundServiceError):
    """The refund_id is known with a different request body: it belongs to that refund for good."""

    code = "IdempotencyConflict"

    def __init__(self, refund_id: str, status: str) -> None:
        if status == "Failed":
            advice = "nothing was refunded; send the corrected request with a new refund_id"
        else:
            advice = f"GET /refunds/{refund_id} shows it; another refund needs a new refund_id"
        super().__init__(
            f"refund {refund_id} was already requested with a different body and is {status}: {advice}",
            {"refund_id": refund_id, "status": status},
        )


class RefundNotFound(RefundServiceError):
    code = "RefundNotFound"

    def __init__(self, refund_id: str) -> None:
        super().__init__(f"no refund {refund_id}", {"refund_id": refund_id})


class CaptureNotFound(RefundServiceError):
    """No refund was ever requested on this capture (its ledger is opened by the first one)."""

    code = "CaptureNotFound"

    def __init__(self, amazon_capture_id: str) -> None:
        super().__init__(
            f"no refunds are known on capture {amazon_capture_id}", {"amazon_capture_id": amazon_capture_id}
        )


class UnknownSeller(RefundServiceError):
    """No credentials are configured for the requested seller_id."""

    code = "UnknownSeller"

    def __init__(self, seller_id: str) -> None:
        super().__init__(f"seller {seller_id} is not configured", {"seller_id": seller_id})


class CaptureNotRefundable(RefundServiceError):
    """GetCaptureDetails says the capture is not Completed: Amazon would refuse any refund."""

    code = "CaptureNotRefundable"

    def __init__(self, amazon_capture_id: str, state: str, reason_code: str | None) -> None:
        super().__init__(
            f"capture {amazon_capture_id} is {state}, not Completed",
            {"amazon_capture_id": amazon_capture_id, "capture_state": state, "reason_code": reason_code},
        )


class ReservationRefused(RefundServiceError):
    """The capture's ledger refused the reservation: `RefundExceedsCapture` or `CurrencyMismatch`."""

    def __init__(self, code: str, message: str, details: Mapping[str, Any]) -> None:
        super().__init__(message, details)
        self.code = code


class AmazonRefused(RefundServiceError):
    """Amazon refused the call outright with a permanent error; `code` is Amazon's (nothing was refunded).

    `refund` is the stored refund (now `Failed`) when the refusal came from the Refund call itself.
    """

    def __init__(self, code: str, amazon_message: str, refund: Refund | None = None) -> None:
        details: dict[str, Any] = {"amazon_error_code": code, "amazon_message": amazon_message}
        if refund is not None:
            details["refund"] = refund.to_resource()
        super().__init__(f"Amazon Pay refused the refund: {code}", details)
        self.code = code
        self.refund = refund


class InvalidRefundState(RefundServiceError):
    """The refund's status does not allow the command (e.g. resolving a refund that is not waiting)."""

    code = "InvalidRefundState"

    def __init__(self, refund: Refund, message: str) -> None:
        super().__init__(message, {"refund_id": refund.refund_id, "status": refund.status.value})
        self.refund = refund


class ServiceBusy(RefundServiceError):
    """The store kept conflicting; nothing changed, and repeating the same request is safe."""

    code = "ServiceBusy"

    def __init__(self) -> None:
        super().__init__("the refund store is busy; repeat the same request")
