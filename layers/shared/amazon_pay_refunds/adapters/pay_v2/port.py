"""Amazon Pay API v2 behind the `AmazonPayPort` (ports.py): Create Refund, Get Refund and Get Charge
answered in the port's terms, so the use cases treat a v2 refund like a v1 one.

- A refund's state: `RefundInitiated` → Pending, `Refunded` → Completed, `Declined` (+ reasonCode) →
  Declined. Anything else is passed through unchanged (`core/models.reported_attempt_state` reads it as
  unknown: the attempt stays as it is).
- The idempotency key of an attempt is its RefundReferenceId (`{refund_id}_{n}`, core/references.py): at
  most 32 characters of `[A-Za-z0-9_-]`, so a repeated attempt can never create a second refund.
- v2 refunds carry neither a reference id nor a type: `refund_reference_id` is the one sent (Create Refund)
  or empty (Get Refund); `refund_type` is `UNTYPED_REFUND_TYPE` (core/classification.py). Every answer
  names its charge (`chargeId`): `amazon_capture_id` is it, qualified (`v2:{charge id}`), so the IPN
  handler finds the charge's ledger from a refund id alone.
- A charge as a capture: `Captured` → state `Completed` with `captureAmount`/`refundedAmount`; other states
  pass through (the service refuses them as not refundable). Amazon lists no refunds on a charge: `id_list`
  is empty; `use_cases/capture_refunds.py` counts `refundedAmount` instead.
- Errors: `PayV2Error` → `AmazonPayError` with Amazon's reason code and request id; retryable exactly when
  the v2 client says so (408/425/429/5xx, transport), so an unknown outcome stays unknown.
- Sandbox simulations: v1 asks for them in the SellerRefundNote (`{"SandboxSimulation": {"State":
  "Declined", "ReasonCode": ...}}`); the same note on a v2 refund becomes `x-amz-pay-simulation-code` when
  (and only when) the endpoint is a sandbox one. v2 has no seller note: otherwise it is not sent. Our
  simulator's `"Times": N` (ProcessingFailure only) travels as `ProcessingFailure;Times=N`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...core.classification import UNTYPED_REFUND_TYPE
from ...core.models import PaymentApi, qualified_id
from ..mws.errors import AmazonPayError
from ..mws.models import (
    AmazonRefundStatus,
    CaptureDetails,
    CaptureStatus,
    Price,
    ProviderCreditReversal,
    RefundDetails,
)
from .client import MAX_SIMULATION_TIMES, PayV2Client
from .errors import PayV2Error
from .models import DECLINED, REFUND_INITIATED, REFUNDED, ChargeV2, RefundV2

CAPTURED = "Captured"
_STATES = {REFUND_INITIATED: "Pending", REFUNDED: "Completed", DECLINED: "Declined"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def port_error(error: PayV2Error) -> AmazonPayError:
    """The port's error for a v2 error: Amazon's reason code, retryable only when the call may be repeated."""
    return AmazonPayError(
        error.code,
        error.message,
        http_status=error.http_status,
        request_id=error.request_id,
        retryable=error.retryable,
    )


def _timestamp(text: str | None) -> datetime:
    if not text:
        return _EPOCH
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return _EPOCH


def refund_details(refund: RefundV2, refund_reference_id: str = "") -> RefundDetails:
    return RefundDetails(
        amazon_refund_id=refund.refund_id,
        refund_reference_id=refund_reference_id,
        refund_type=UNTYPED_REFUND_TYPE,
        refund_amount=Price(refund.amount.amount, refund.amount.currency_code),
        fee_refunded=None,
        creation_timestamp=_timestamp(refund.creation_timestamp),
        refund_status=AmazonRefundStatus(
            state=_STATES.get(refund.state, refund.state),
            last_update_timestamp=_timestamp(refund.last_updated_timestamp),
            reason_code=refund.reason_code,
            reason_description=refund.reason_description,
        ),
        seller_refund_note=None,
        soft_descriptor=refund.soft_descriptor,
        converted_amount=None,
        conversion_rate=None,
        request_id=refund.request_id,
        amazon_capture_id=qualified_id(PaymentApi.V2, refund.charge_id) if refund.charge_id else None,
    )


def capture_details(charge: ChargeV2) -> CaptureDetails:
    currency = next(
        (p.currency_code for p in (charge.capture_amount, charge.charge_amount) if p is not None), "USD"
    )

    def price(value: Any) -> Price:
        return Price(value.amount, value.currency_code) if value is not None else Price(Decimal(0), currency)

    return CaptureDetails(
        amazon_capture_id=charge.charge_id,
        capture_reference_id="",
        capture_amount=price(charge.capture_amount),
        refunded_amount=price(charge.refunded_amount),
        capture_fee=None,
        capture_status=CaptureStatus(
            state="Completed" if charge.state == CAPTURED else charge.state,
            reason_code=charge.reason_code,
            last_update_timestamp=None,
        ),
        id_list=(),
        creation_timestamp=_EPOCH,
        seller_capture_note=None,
        soft_descriptor=None,
        converted_amount=None,
        conversion_rate=None,
        request_id=charge.request_id,
        charge_permission_id=charge.charge_permission_id,
    )


def simulation_code(seller_refund_note: str | None) -> str | None:
    """The v1 SandboxSimulation note's ReasonCode of a Declined simulation, for the v2 header; else None.

    A ProcessingFailure note's ``"Times": N`` (our simulator's extension, v1 and v2) becomes
    ``ProcessingFailure;Times=N``; a Times that is not a whole number from 1 to 9999 is dropped, so the
    simulation declines every refund (never an unexpected success)."""
    if not seller_refund_note or "SandboxSimulation" not in seller_refund_note:
        return None
    try:
        simulation = json.loads(seller_refund_note)["SandboxSimulation"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(simulation, dict) or simulation.get("State") != "Declined":
        return None
    code = simulation.get("ReasonCode")
    if not isinstance(code, str) or not code.isalpha():
        return None
    times = simulation.get("Times")
    if code == "ProcessingFailure" and type(times) is int and 1 <= times <= MAX_SIMULATION_TIMES:
        return f"{code};Times={times}"
    return code


class PayV2AmazonPay:
    """`AmazonPayPort` over a `PayV2Client` (ids are Amazon's v2 ids, unqualified: the router strips them)."""

    def __init__(self, client: PayV2Client, *, sandbox: bool) -> None:
        self._client = client
        self._sandbox = sandbox

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
        if provider_credit_reversals:
            raise ValueError("Amazon Pay API v2 refunds take no provider credit reversals")
        try:
            created = self._client.create_refund(
                amazon_capture_id,
                amount,
                currency_code,
                idempotency_key=refund_reference_id,
                soft_descriptor=soft_descriptor,
                simulation_code=simulation_code(seller_refund_note) if self._sandbox else None,
                seller_id=seller_id,
                deadline=deadline,
            )
        except PayV2Error as error:
            raise port_error(error) from None
        return refund_details(created, refund_reference_id)

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        try:
            return refund_details(
                self._client.get_refund(amazon_refund_id, seller_id=seller_id, deadline=deadline)
            )
        except PayV2Error as error:
            raise port_error(error) from None

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        try:
            charge = self._client.get_charge(amazon_capture_id, seller_id=seller_id, deadline=deadline)
        except PayV2Error as error:
            raise port_error(error) from None
        return capture_details(charge)
