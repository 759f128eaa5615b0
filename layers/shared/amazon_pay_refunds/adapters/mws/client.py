"""AmazonPayClient: signed Amazon Pay v1 calls over requests, with bounded retries inside a deadline.

Retries follow Amazon's advice (500/503, throttling) plus transport failures (`errors.is_retryable`), with
exponential backoff and full jitter; 4xx are never retried. Each attempt is signed afresh (new Timestamp). A
``deadline`` (an absolute ``time.monotonic()`` value) is never overrun by a sleep or by a request's
timeouts. The loop is the v2 client's too (`deadlines.RetryingTransport`); it removes the secret key, the
MWSAuthToken and the signature from every error message (`deadlines.redact`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar, Unpack

import requests

from ...deadlines import (  # shared with adapters/pay_v2
    MIN_ATTEMPT_SECONDS,
    Answer,
    RandomSource,
    RetryingTransport,
    RetrySettings,
    Signed,
    deadline_in,
    host_without_default_port,
)
from ...money import wire_amount
from .credentials import NoCredentialsForSeller, SellerCredentials
from .endpoints import Endpoint
from .errors import CONNECTION_ERROR, REQUEST_TIMEOUT, AmazonPayError
from .models import CaptureDetails, ProviderCreditReversal, RefundDetails, ServiceStatus
from .parse import (
    parse_error_response,
    parse_get_capture_details_response,
    parse_get_refund_details_response,
    parse_refund_response,
    parse_service_status_response,
)
from .signing import canonical_query, percent_encode, signed_params

logger = logging.getLogger(__name__)

T = TypeVar("T")

REFUND_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_SELLER_REFUND_NOTE = 255
MAX_SOFT_DESCRIPTOR = 16
_REQUEST_ID_HEADERS = ("x-mws-request-id", "x-amzn-requestid", "x-amz-request-id")

CredentialsProvider = Callable[[str | None], SellerCredentials]

__all__ = ["MIN_ATTEMPT_SECONDS", "AmazonPayClient", "RandomSource", "deadline_in", "host_header"]


def host_header(endpoint: Endpoint) -> str:
    """The Host header as sent and signed: lower-case, with the port only when not the scheme's default."""
    return host_without_default_port(endpoint.scheme, endpoint.host)


class AmazonPayClient:
    """Amazon Pay v1 (MWS OffAmazonPayments 2013-01-01): Refund, GetRefundDetails, GetCaptureDetails,
    GetServiceStatus. ``credentials`` is one seller's SellerCredentials, or a provider called with the
    SellerId of each call (None for the default seller), e.g. ``CredentialsBook.for_seller``. Retry settings
    (``timeout``, ``max_attempts``, ...): `deadlines.RetrySettings`."""

    def __init__(
        self,
        credentials: SellerCredentials | CredentialsProvider,
        endpoint: Endpoint,
        *,
        session: requests.Session | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        **retry: Unpack[RetrySettings],
    ) -> None:
        self._credentials = credentials
        self._endpoint = endpoint
        self._host = host_header(endpoint)
        self._session = session if session is not None else requests.Session()
        self._now = now
        self._transport = RetryingTransport(api="Amazon Pay", logger=logger, **retry)

    def __repr__(self) -> str:
        return f"AmazonPayClient(endpoint={self._endpoint.url!r})"

    # -- operations --------------------------------------------------------------------------------

    def refund(
        self,
        amazon_capture_id: str,
        refund_reference_id: str,
        amount: Decimal,
        currency_code: str,
        *,
        seller_refund_note: str | None = None,
        soft_descriptor: str | None = None,
        provider_credit_reversals: Sequence[ProviderCreditReversal] = (),
        seller_id: str | None = None,
        deadline: float | None = None,
    ) -> RefundDetails:
        """Refund ``amount`` of a Completed capture. Amazon answers Pending; the outcome follows by IPN.

        Idempotent at Amazon for an unchanged RefundReferenceId and parameters, so a retry after an
        unknown outcome cannot refund twice.
        """
        _require_id(amazon_capture_id, "amazon_capture_id")
        if not isinstance(refund_reference_id, str) or not REFUND_REFERENCE_ID.fullmatch(refund_reference_id):
            raise ValueError("refund_reference_id must be 1-32 characters of A-Z a-z 0-9 - _")
        params = {
            "AmazonCaptureId": amazon_capture_id,
            "RefundReferenceId": refund_reference_id,
            "RefundAmount.Amount": wire_amount(amount, currency_code, "amount"),
            "RefundAmount.CurrencyCode": currency_code,
        }
        if seller_refund_note:
            if len(seller_refund_note) > MAX_SELLER_REFUND_NOTE:
                raise ValueError(f"seller_refund_note is longer than {MAX_SELLER_REFUND_NOTE} characters")
            params["SellerRefundNote"] = seller_refund_note
        if soft_descriptor:
            if len(soft_descriptor) > MAX_SOFT_DESCRIPTOR:
                raise ValueError(f"soft_descriptor is longer than {MAX_SOFT_DESCRIPTOR} characters")
            params["SoftDescriptor"] = soft_descriptor
        for n, reversal in enumerate(provider_credit_reversals, start=1):
            prefix = f"ProviderCreditReversalList.member.{n}"
            _require_id(reversal.provider_id, f"provider_credit_reversals[{n - 1}].provider_id")
            params[f"{prefix}.ProviderId"] = reversal.provider_id
            params[f"{prefix}.CreditReversalAmount.Amount"] = wire_amount(
                reversal.amount, reversal.currency_code, f"provider_credit_reversals[{n - 1}].amount"
            )
            params[f"{prefix}.CreditReversalAmount.CurrencyCode"] = reversal.currency_code
        return self._call("Refund", params, parse_refund_response, seller_id=seller_id, deadline=deadline)

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        _require_id(amazon_refund_id, "amazon_refund_id")
        return self._call(
            "GetRefundDetails",
            {"AmazonRefundId": amazon_refund_id},
            parse_get_refund_details_response,
            seller_id=seller_id,
            deadline=deadline,
        )

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        _require_id(amazon_capture_id, "amazon_capture_id")
        return self._call(
            "GetCaptureDetails",
            {"AmazonCaptureId": amazon_capture_id},
            parse_get_capture_details_response,
            seller_id=seller_id,
            deadline=deadline,
        )

    def get_service_status(
        self, *, seller_id: str | None = None, deadline: float | None = None
    ) -> ServiceStatus:
        return self._call(
            "GetServiceStatus", {}, parse_service_status_response, seller_id=seller_id, deadline=deadline
        )

    # -- the call loop -----------------------------------------------------------------------------

    def _seller_credentials(self, seller_id: str | None) -> SellerCredentials:
        if isinstance(self._credentials, SellerCredentials):
            if seller_id is not None and seller_id != self._credentials.seller_id:
                raise NoCredentialsForSeller(seller_id)
            return self._credentials
        return self._credentials(seller_id)

    def _call(
        self,
        action: str,
        params: Mapping[str, str],
        parse: Callable[[bytes], T],
        *,
        seller_id: str | None,
        deadline: float | None,
    ) -> T:
        credentials = self._seller_credentials(seller_id)

        def sign() -> Signed[dict[str, str]]:
            form = signed_params(
                secret_key=credentials.secret_key,
                access_key=credentials.access_key,
                seller_id=credentials.seller_id,
                action=action,
                host=self._host,
                path=self._endpoint.path,
                params=params,
                mws_auth_token=credentials.mws_auth_token,
                now=self._now(),
            )
            # No error message may show these (deadlines.redact; percent-encoded forms too).
            return Signed(form, (credentials.secret_key, credentials.mws_auth_token, form["Signature"]))

        def send(form: dict[str, str], timeout: tuple[float, float]) -> Answer[T]:
            return self._attempt(action, form, timeout, parse)

        return self._transport.call(
            action, sign=sign, send=send, not_sent=_not_sent, deadline=deadline,
            seller_id=credentials.seller_id,
        )  # fmt: skip

    def _attempt(
        self, action: str, form: Mapping[str, str], timeout: tuple[float, float], parse: Callable[[bytes], T]
    ) -> Answer[T]:
        # The body is the canonical query itself (as Amazon's SDKs send it), then the Signature.
        body = f"{canonical_query(form)}&Signature={percent_encode(form['Signature'])}"
        try:
            response = self._session.post(
                self._endpoint.url,
                data=body.encode("utf-8"),
                headers={
                    "Host": self._host,
                    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                    "User-Agent": "amazon-pay-refunds/0.1 (Language=Python)",
                },
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise AmazonPayError(REQUEST_TIMEOUT, f"{action}: {type(exc).__name__}: {exc}") from None
        except requests.RequestException as exc:
            raise AmazonPayError(CONNECTION_ERROR, f"{action}: {type(exc).__name__}: {exc}") from None
        header_request_id = next(
            (response.headers[name] for name in _REQUEST_ID_HEADERS if name in response.headers), None
        )
        status = response.status_code
        if 200 <= status < 300:
            try:
                result = parse(response.content)
            except AmazonPayError as malformed:
                # A 2xx whose body cannot be read: the call's outcome is unknown, so it may be re-sent.
                raise malformed.with_changes(
                    http_status=status, request_id=malformed.request_id or header_request_id, retryable=True
                ) from None
            return Answer(result, status, _request_id_of(result))
        if 300 <= status < 400:
            raise AmazonPayError(
                "UnexpectedRedirect",
                f"{action}: HTTP {status} redirect refused",
                http_status=status,
                request_id=header_request_id,
                retryable=False,
            )
        error = parse_error_response(response.content, status)
        if error.request_id is None and header_request_id is not None:
            error = error.with_changes(request_id=header_request_id)
        raise error


def _not_sent(message: str) -> AmazonPayError:
    return AmazonPayError(REQUEST_TIMEOUT, message, retryable=True)


def _request_id_of(result: object) -> str | None:
    request_id = getattr(result, "request_id", None)
    return request_id if isinstance(request_id, str) else None


def _require_id(value: str, name: str) -> None:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValueError(f"{name} must be a non-empty identifier without surrounding whitespace")
