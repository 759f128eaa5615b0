"""Builders for store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import request_refund
from amazon_pay_refunds.core.models import Refund, request_fingerprint

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CAPTURE_ID = "S01-1234567-1234567-C000001"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def refund(
    refund_id: str = "ord-1001-r1",
    amount: str = "12.50",
    currency_code: str = "USD",
    capture_id: str = CAPTURE_ID,
    note: str | None = "Returned item",
    created: datetime = T0,
) -> Refund:
    body = {"refund_id": refund_id, "amount": amount, "currency_code": currency_code, "note": note}
    return request_refund(
        refund_id=refund_id,
        seller_id="A1EXAMPLE",
        amazon_capture_id=capture_id,
        amount=Decimal(amount),
        currency_code=currency_code,
        seller_refund_note=note,
        soft_descriptor="Returns",
        metadata={"order_id": "1001"},
        request_fingerprint=request_fingerprint(body),
        at=created,
    ).refund


def seed(captured: str = "100.00", currency_code: str = "USD", capture_id: str = CAPTURE_ID) -> LedgerSeed:
    return LedgerSeed(capture_id, "A1EXAMPLE", currency_code, Decimal(captured))
