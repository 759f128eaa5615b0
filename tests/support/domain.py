"""Builders for domain tests: a fresh refund, and a refund driven through observations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from amazon_pay_refunds.core.lifecycle import Observation, Transition, apply_observation, request_refund
from amazon_pay_refunds.core.models import Refund

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CAPTURE_ID = "S01-1234567-1234567-C000001"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_refund(refund_id: str = "ord-1001-r1", amount: str = "12.50", currency_code: str = "USD") -> Refund:
    return request_refund(
        refund_id=refund_id,
        seller_id="A1EXAMPLE",
        amazon_capture_id=CAPTURE_ID,
        amount=Decimal(amount),
        currency_code=currency_code,
        seller_refund_note="Returned item",
        soft_descriptor="Returns",
        metadata={"order_id": "1001"},
        request_fingerprint="f" * 32,
        at=T0,
    ).refund


def step(refund: Refund, observation: Observation, seconds: float = 1, max_retries: int = 1) -> Transition:
    return apply_observation(refund, observation, at=at(seconds), max_processing_failure_retries=max_retries)


def drive(refund: Refund, *observations: Observation, max_retries: int = 1) -> Refund:
    for index, observation in enumerate(observations, start=1):
        refund = step(refund, observation, seconds=index, max_retries=max_retries).refund
    return refund
