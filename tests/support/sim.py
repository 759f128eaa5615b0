"""Simulator test helpers: a hand-driven clock, signed MWS calls, answers read by element name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring

from amazon_pay_refunds.adapters.mws import signing
from amazon_pay_sim.simulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SELLER_ID,
    MWS_PATH,
    Simulator,
)

NAMESPACE = "http://mws.amazonservices.com/schema/OffAmazonPayments/2013-01-01"
HOST = "sim.test:8701"
START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# The settle time of the unit tests' simulator (tests/unit/sim/conftest.py).
SETTLE_SECONDS = 30.0


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Answer:
    status: int
    body: str
    hold_seconds: float | None = None

    @property
    def root(self) -> Element:
        return fromstring(self.body)  # type: ignore[no-any-return]

    def field(self, name: str) -> str | None:
        """Text of the first element with this local name, anywhere in the answer."""
        for element in self.root.iter():
            if element.tag.split("}")[-1] == name:
                return element.text
        return None

    def all(self, name: str) -> list[str]:
        return [e.text or "" for e in self.root.iter() if e.tag.split("}")[-1] == name]

    @property
    def code(self) -> str | None:
        return self.field("Code")


def signed_body(
    action: str,
    params: Mapping[str, str],
    *,
    host: str = HOST,
    secret_key: str = DEFAULT_SECRET_KEY,
    access_key: str = DEFAULT_ACCESS_KEY,
    seller_id: str = DEFAULT_SELLER_ID,
    now: datetime | None = None,
) -> dict[str, str]:
    return signing.signed_params(
        secret_key=secret_key,
        access_key=access_key,
        seller_id=seller_id,
        action=action,
        host=host,
        path=MWS_PATH,
        params=params,
        now=now,
    )


def encode(body: Mapping[str, str]) -> bytes:
    return "&".join(
        f"{signing.percent_encode(k)}={signing.percent_encode(v)}" for k, v in body.items()
    ).encode()


def post(sim: Simulator, body: Mapping[str, str], *, host: str = HOST, path: str = MWS_PATH) -> Answer:
    answer = sim.handle_mws("POST", host, path, encode(body))
    return Answer(answer.status, answer.body, answer.hold_seconds)


def call(
    sim: Simulator, clock: FakeClock, action: str, params: Mapping[str, str] | None = None, **kw: Any
) -> Answer:
    return post(sim, signed_body(action, params or {}, now=clock(), **kw))


def refund_params(
    capture_id: str, reference: str, amount: str = "10.00", currency: str = "USD", **extra: str
) -> dict[str, str]:
    return {
        "AmazonCaptureId": capture_id,
        "RefundReferenceId": reference,
        "RefundAmount.Amount": amount,
        "RefundAmount.CurrencyCode": currency,
        **extra,
    }
