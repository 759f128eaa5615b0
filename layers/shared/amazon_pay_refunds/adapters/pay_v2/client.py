"""PayV2Client: signed Amazon Pay API v2 calls (Create Refund, Get Refund, Get Charge) over requests.

Each attempt is signed afresh (new ``x-amz-pay-date``); a Create Refund re-sends the same body with the same
``x-amz-pay-idempotency-key``, so a retry after an unknown outcome cannot refund twice. Retries: HTTP 408,
425, 429 and 5xx and transport failures (`errors.is_retryable_status`), in the v1 client's loop with its
deadline and backoff rules (`deadlines.RetryingTransport`); every other error is raised at once. The
private key never appears in a log line, repr or error: errors carry only Amazon's reason code, message and
request id, and the loop removes any echo of the Authorization header, its signature or a private key line
from a message (`_secrets`, `deadlines.redact`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, Unpack

import requests

from ...deadlines import Answer, RetryingTransport, RetrySettings, Signed
from ...money import wire_amount
from ..mws.credentials import NoCredentialsForSeller, PayV2Credentials
from . import signing
from .endpoints import PayV2Endpoint, api_path
from .errors import CONNECTION_ERROR, REQUEST_TIMEOUT, PayV2Error, PayV2TransportError, error_for
from .models import ChargeV2, RefundV2, load_json, parse_charge, parse_refund

logger = logging.getLogger(__name__)

T = TypeVar("T")

# At most 32 characters of [A-Za-z0-9_-] (Amazon's idempotency guide); the service derives it from refund_id
# as it derives the v1 RefundReferenceId.
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_SOFT_DESCRIPTOR = 16
# Amazon's codes are letters; ";Times=N" is our simulator's extension (tools/amazon_pay_sim/pay_v2.py).
MAX_SIMULATION_TIMES = 9999
SIMULATION_CODE = re.compile(r"[A-Za-z]{1,64}|ProcessingFailure;Times=[1-9][0-9]{0,3}")  # fullmatch
# Amazon's ids: letters, digits and dashes (S01-1234567-1234567-R000001). Anything else would change the path.
_OBJECT_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
REQUEST_ID_HEADER = "x-amz-pay-request-id"
USER_AGENT = "amazon-pay-refunds/0.1 (Language=Python)"

CredentialsProvider = Callable[[str | None], PayV2Credentials]


def amz_date(now: datetime) -> str:
    """``x-amz-pay-date``: YYYYMMDDTHHMMSSZ in UTC."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class PayV2Client:
    """Amazon Pay API v2 for refunds. ``credentials`` is one seller's PayV2Credentials, or a provider called
    with the seller id of each call (None for the default seller), e.g. ``CredentialsBook.for_v2_seller``.
    ``algorithm`` is ``AMZN-PAY-RSASSA-PSS-V2`` unless configured (the SDKs' default is the older salt-20
    algorithm; both are accepted by Amazon). Retry settings (``timeout``, ``max_attempts``, ...):
    `deadlines.RetrySettings`."""

    def __init__(
        self,
        credentials: PayV2Credentials | CredentialsProvider,
        endpoint: PayV2Endpoint,
        *,
        algorithm: str = signing.ALGORITHM_V2,
        session: requests.Session | None = None,
        verify: bool | str = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        **retry: Unpack[RetrySettings],
    ) -> None:
        if algorithm not in signing.SALT_LENGTHS:
            raise ValueError(f"algorithm must be one of {sorted(signing.SALT_LENGTHS)}")
        self._credentials = credentials
        self._endpoint = endpoint
        self._algorithm = algorithm
        self._session = session if session is not None else requests.Session()
        self._verify = verify
        self._now = now
        self._transport = RetryingTransport(api="Amazon Pay v2", logger=logger, **retry)

    def __repr__(self) -> str:
        return f"PayV2Client(endpoint={self._endpoint.base_url!r}, algorithm={self._algorithm!r})"

    # -- operations --------------------------------------------------------------------------------

    def create_refund(
        self,
        charge_id: str,
        amount: Decimal,
        currency_code: str,
        *,
        idempotency_key: str,
        soft_descriptor: str | None = None,
        simulation_code: str | None = None,
        seller_id: str | None = None,
        deadline: float | None = None,
    ) -> RefundV2:
        """Refund ``amount`` of a Captured charge. Amazon answers RefundInitiated; the outcome follows by
        IPN or Get Refund. ``simulation_code`` (sandbox only) is sent as ``x-amz-pay-simulation-code``
        (``ProcessingFailure;Times=N``: our simulator's extension, see tools/amazon_pay_sim/pay_v2.py)."""
        _require_id(charge_id, "charge_id")
        if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise ValueError("idempotency_key must be 1-32 characters of A-Z a-z 0-9 - _")
        body: dict[str, Any] = {
            "chargeId": charge_id,
            "refundAmount": {"amount": wire_amount(amount, currency_code), "currencyCode": currency_code},
        }
        if soft_descriptor:
            if len(soft_descriptor.encode("utf-8")) > MAX_SOFT_DESCRIPTOR:
                raise ValueError(f"soft_descriptor is longer than {MAX_SOFT_DESCRIPTOR} bytes")
            body["softDescriptor"] = soft_descriptor
        headers = {"x-amz-pay-idempotency-key": idempotency_key}
        if simulation_code is not None:
            if not SIMULATION_CODE.fullmatch(simulation_code):
                raise ValueError("simulation_code must be letters only, or ProcessingFailure;Times=N")
            headers["x-amz-pay-simulation-code"] = simulation_code
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return self._call(
            "CreateRefund", "POST", "/refunds", payload, headers, parse_refund, seller_id=seller_id,
            deadline=deadline,
        )  # fmt: skip

    def get_refund(
        self, refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundV2:
        _require_id(refund_id, "refund_id")
        return self._call(
            "GetRefund", "GET", f"/refunds/{refund_id}", b"", {}, parse_refund, seller_id=seller_id,
            deadline=deadline,
        )  # fmt: skip

    def get_charge(
        self, charge_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> ChargeV2:
        _require_id(charge_id, "charge_id")
        return self._call(
            "GetCharge", "GET", f"/charges/{charge_id}", b"", {}, parse_charge, seller_id=seller_id,
            deadline=deadline,
        )  # fmt: skip

    # -- the call loop -----------------------------------------------------------------------------

    def _seller_credentials(self, seller_id: str | None) -> PayV2Credentials:
        if isinstance(self._credentials, PayV2Credentials):
            if seller_id is not None and seller_id != self._credentials.seller_id:
                raise NoCredentialsForSeller(seller_id)
            return self._credentials
        return self._credentials(seller_id)

    def _call(
        self,
        operation: str,
        method: str,
        resource: str,
        payload: bytes,
        extra_headers: Mapping[str, str],
        parse: Callable[[dict[str, Any], str | None], T],
        *,
        seller_id: str | None,
        deadline: float | None,
    ) -> T:
        credentials = self._seller_credentials(seller_id)
        key = credentials.private_key()
        path = api_path(credentials.public_key_id, self._endpoint.sandbox) + resource

        def sign() -> Signed[dict[str, str]]:
            headers = signing.sign_request(
                private_key=key,
                public_key_id=credentials.public_key_id,
                algorithm=self._algorithm,
                method=method,
                uri=path,
                query=None,
                headers={
                    "accept": "application/json",
                    "content-type": "application/json",
                    "x-amz-pay-date": amz_date(self._now()),
                    "x-amz-pay-host": self._endpoint.host_header,
                    "x-amz-pay-region": self._endpoint.region,
                    **extra_headers,
                },
                payload=payload,
            )
            headers["user-agent"] = USER_AGENT  # unsigned, as the PHP SDK leaves it
            return Signed(headers, _secrets(headers["authorization"], credentials.private_key_pem))

        def send(headers: dict[str, str], timeout: tuple[float, float]) -> Answer[T]:
            document, request_id, status = self._attempt(operation, method, path, headers, payload, timeout)
            return Answer(parse(document, request_id), status, request_id)

        return self._transport.call(
            operation, sign=sign, send=send, not_sent=_not_sent, deadline=deadline,
            seller_id=credentials.seller_id, public_key_id=credentials.public_key_id,
        )  # fmt: skip

    def _attempt(
        self,
        operation: str,
        method: str,
        path: str,
        headers: dict[str, str],
        payload: bytes,
        timeout: tuple[float, float],
    ) -> tuple[dict[str, Any], str | None, int]:
        try:
            response = self._session.request(
                method,
                self._endpoint.base_url + path,
                data=payload or None,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                verify=self._verify,
            )
        except requests.Timeout as exc:
            raise PayV2TransportError(
                REQUEST_TIMEOUT, f"{operation}: {type(exc).__name__}", retryable=True
            ) from None
        except requests.RequestException as exc:
            raise PayV2TransportError(
                CONNECTION_ERROR, f"{operation}: {type(exc).__name__}: {exc}", retryable=True
            ) from None
        request_id = response.headers.get(REQUEST_ID_HEADER)
        status = response.status_code
        if 200 <= status < 300:
            try:
                return load_json(response.content), request_id, status
            except PayV2Error as malformed:
                raise type(malformed)(
                    malformed.code,
                    malformed.message,
                    http_status=status,
                    request_id=request_id,
                    retryable=True,
                ) from None
        code, message = _error_body(response.content, status)
        raise error_for(code, f"{operation}: {message}", status, request_id)


def _secrets(authorization: str, private_key_pem: str) -> tuple[str, ...]:
    """What no error message may show (deadlines.redact): the Authorization header (an echo of the request,
    as some proxies write, would carry it) and its signature alone, and the private key whole and line by
    line (Amazon never sees it; redacted all the same). Key lines shorter than 16 characters (the last one
    may be a few characters) are left: replacing them could blank common text and they reveal little."""
    signature = authorization.rsplit("Signature=", 1)[-1]
    key_lines = [line.strip() for line in private_key_pem.splitlines() if len(line.strip()) >= 16]
    return (authorization, signature, private_key_pem.strip(), *key_lines)


def _not_sent(message: str) -> PayV2Error:
    return PayV2TransportError(REQUEST_TIMEOUT, message, retryable=True)


def _error_body(content: bytes, status: int) -> tuple[str, str]:
    """Amazon's ``{"reasonCode", "message"}``; any other body (a proxy's HTML page) gets a code of ours."""
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("reasonCode"), str):
        message = document.get("message")
        return document["reasonCode"], message if isinstance(message, str) else ""
    return f"HTTP{status}", "the error answer is not Amazon Pay's JSON error"


def _require_id(value: str, name: str) -> None:
    if not isinstance(value, str) or not _OBJECT_ID.fullmatch(value):
        raise ValueError(f"{name} must be an Amazon Pay id (letters, digits and '-')")
