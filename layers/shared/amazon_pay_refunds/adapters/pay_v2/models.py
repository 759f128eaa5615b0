"""Typed Amazon Pay API v2 results (Refund, Charge), amounts in Decimal, parsed from Amazon's JSON.

Amounts are documented as strings ("14.00"); a JSON number is accepted too (the .NET SDK and Magento send
numbers) but read without passing through a float.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import MALFORMED_RESPONSE, PayV2TransportError

# Refund states (statusDetails.state) and the decline reasons the service acts on. The reason codes are the
# MWS refund table's; Amazon does not confirm them for v2 (amazon-pay-v2.md, open question 2).
REFUND_INITIATED = "RefundInitiated"
REFUNDED = "Refunded"
DECLINED = "Declined"
REFUND_STATES = (REFUND_INITIATED, REFUNDED, DECLINED)
AMAZON_REJECTED = "AmazonRejected"
PROCESSING_FAILURE = "ProcessingFailure"

CHARGE_STATES = (
    "AuthorizationInitiated",
    "Authorized",
    "CaptureInitiated",
    "Captured",
    "Canceled",
    "Declined",
)

_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?")


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency_code: str


@dataclass(frozen=True)
class RefundV2:
    refund_id: str
    charge_id: str
    amount: Price
    state: str
    reason_code: str | None
    reason_description: str | None
    creation_timestamp: str | None
    last_updated_timestamp: str | None
    soft_descriptor: str | None
    release_environment: str | None
    request_id: str | None = None

    @property
    def final(self) -> bool:
        return self.state in (REFUNDED, DECLINED)


@dataclass(frozen=True)
class ChargeV2:
    charge_id: str
    charge_permission_id: str | None
    state: str
    reason_code: str | None
    charge_amount: Price | None
    capture_amount: Price | None
    refunded_amount: Price | None
    release_environment: str | None
    request_id: str | None = None


def _malformed(detail: str) -> PayV2TransportError:
    # A 2xx we cannot read: the call's outcome is unknown, so it may be re-sent (same idempotency key).
    return PayV2TransportError(
        MALFORMED_RESPONSE, f"unreadable Amazon Pay v2 answer: {detail}", retryable=True
    )


def load_json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("not JSON") from None
    if not isinstance(document, dict):
        raise _malformed("not a JSON object")
    return document


def _required(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise _malformed(f"{name} is missing or not a string")
    return value


def _string(document: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    if document.get(name) is None and not required:
        return None
    return _required(document, name)


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, str) and _AMOUNT.fullmatch(value):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite() and value >= 0:
        return value  # a JSON number, parsed as Decimal (never a float)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Decimal(value)
    raise _malformed(f"{where} is not a non-negative decimal amount")


def parse_price(document: dict[str, Any], name: str, *, required: bool = True) -> Price | None:
    if document.get(name) is None and not required:
        return None
    return _price(document, name)


def _price(document: dict[str, Any], name: str) -> Price:
    value = document.get(name)
    if not isinstance(value, dict):
        raise _malformed(f"{name} is missing or not an object")
    currency = value.get("currencyCode")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise _malformed(f"{name}.currencyCode is not a currency code")
    return Price(_decimal(value.get("amount"), f"{name}.amount"), currency)


def _status(document: dict[str, Any]) -> dict[str, Any]:
    # API v2 renamed statusDetail (API v1) to statusDetails; the 2020 JP sandbox fixtures have the old name.
    status = document.get("statusDetails", document.get("statusDetail"))
    if not isinstance(status, dict):
        raise _malformed("statusDetails is missing")
    return status


def _timestamp(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
        return str(value)  # YYYYMMDDTHHMMSSZ, or epoch milliseconds in the 2020 JP sandbox answers
    raise _malformed(f"{name} is not a timestamp")


def parse_refund(document: dict[str, Any], request_id: str | None = None) -> RefundV2:
    status = _status(document)
    state = _required(status, "state")
    if state not in REFUND_STATES:
        raise _malformed(f"unknown refund state {state[:40]!r}")
    return RefundV2(
        refund_id=_required(document, "refundId"),
        charge_id=_required(document, "chargeId"),
        amount=_price(document, "refundAmount"),
        state=state,
        reason_code=_string(status, "reasonCode", required=False),
        reason_description=_string(status, "reasonDescription", required=False),
        creation_timestamp=_timestamp(document, "creationTimestamp"),
        last_updated_timestamp=_timestamp(status, "lastUpdatedTimestamp"),
        soft_descriptor=_string(document, "softDescriptor", required=False),
        release_environment=_string(document, "releaseEnvironment", required=False),
        request_id=request_id,
    )


def parse_charge(document: dict[str, Any], request_id: str | None = None) -> ChargeV2:
    status = _status(document)
    state = _required(status, "state")
    if state not in CHARGE_STATES:
        raise _malformed(f"unknown charge state {state[:40]!r}")
    return ChargeV2(
        charge_id=_required(document, "chargeId"),
        charge_permission_id=_string(document, "chargePermissionId", required=False),
        state=state,
        reason_code=_string(status, "reasonCode", required=False),
        charge_amount=parse_price(document, "chargeAmount", required=False),
        capture_amount=parse_price(document, "captureAmount", required=False),
        refunded_amount=parse_price(document, "refundedAmount", required=False),
        release_environment=_string(document, "releaseEnvironment", required=False),
        request_id=request_id,
    )
