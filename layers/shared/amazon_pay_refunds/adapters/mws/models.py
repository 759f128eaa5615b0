"""Typed results of Amazon Pay v1 calls (and of the same structures inside IPNs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class Price:
    """An amount as Amazon reports it, with its ISO currency code."""

    amount: Decimal
    currency_code: str


@dataclass(frozen=True)
class AmazonRefundStatus:
    state: str  # Pending, Completed, Declined
    last_update_timestamp: datetime | None
    reason_code: str | None  # AmazonRejected, ProcessingFailure when Declined
    reason_description: str | None


@dataclass(frozen=True)
class RefundDetails:
    amazon_refund_id: str
    refund_reference_id: str
    refund_type: str  # SellerInitiated; AmazonA-ZRefund or BuyerCanceled when Amazon refunded
    refund_amount: Price
    fee_refunded: Price | None
    creation_timestamp: datetime
    refund_status: AmazonRefundStatus
    seller_refund_note: str | None
    soft_descriptor: str | None
    converted_amount: Price | None
    conversion_rate: Decimal | None
    request_id: str | None = None
    # API v2 only (adapters/pay_v2/port.py): the charge Get Refund names (`chargeId`), as the ports name it
    # (`v2:{charge id}`, core/models.qualified_id). v1 refunds leave it None (an IPN names no capture).
    amazon_capture_id: str | None = None


@dataclass(frozen=True)
class CaptureStatus:
    state: str  # Pending, Declined, Completed, Closed
    reason_code: str | None  # e.g. MaxAmountRefunded, MaxRefundsProcessed, AmazonClosed
    last_update_timestamp: datetime | None
    reason_description: str | None = None


@dataclass(frozen=True)
class CaptureDetails:
    amazon_capture_id: str
    capture_reference_id: str
    capture_amount: Price
    refunded_amount: Price
    capture_fee: Price | None
    capture_status: CaptureStatus
    id_list: tuple[str, ...]  # the AmazonRefundIds issued against this capture
    creation_timestamp: datetime
    seller_capture_note: str | None
    soft_descriptor: str | None
    converted_amount: Price | None
    conversion_rate: Decimal | None
    request_id: str | None = None
    # API v2 only (adapters/pay_v2/port.py): Get Charge's chargePermissionId. v1 captures have none.
    charge_permission_id: str | None = None


@dataclass(frozen=True)
class ServiceMessage:
    locale: str | None
    text: str


@dataclass(frozen=True)
class ServiceStatus:
    status: str  # GREEN, GREEN_I, YELLOW, RED
    timestamp: datetime | None
    message_id: str | None
    messages: tuple[ServiceMessage, ...]
    request_id: str | None = None


@dataclass(frozen=True)
class ProviderCreditReversal:
    """A solution provider's credit to reverse with a refund (ProviderCreditReversalList.member.N)."""

    provider_id: str
    amount: Decimal
    currency_code: str
