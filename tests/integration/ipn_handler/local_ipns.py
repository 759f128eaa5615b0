"""Refund IPNs signed by a local CA that the handler trusts through trust_from_environment's variables."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from amazon_pay_refunds.core.references import refund_reference_id
from tests.support.ipn_signing import (
    LOCAL_PREFIX,
    SELLER,
    TOPIC,
    Signer,
    amazon_pay_message,
    api_event,
    refund_notification_xml,
)

from .conftest import Endpoint


def amazon_refund_id(refund_id: str, attempt: int = 1) -> str:
    """A stable AmazonRefundId per (refund, attempt), on the order of conftest's capture."""
    return f"S01-1234567-1234567-R{zlib.crc32(f'{refund_id}_{attempt}'.encode()) % 10**6:06d}"


class LocalIpns:
    """Builds signed PaymentRefund posts for a refund's attempts."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def refund_event(
        self,
        refund_id: str,
        state: str,
        *,
        attempt: int = 1,
        reason_code: str | None = None,
        notification_reference_id: str | None = None,
        seller_id: str = SELLER,
        amount: str = "12.50",
        topic: str = TOPIC,
        **message_fields: Any,
    ) -> dict[str, Any]:
        data = refund_notification_xml(
            amazon_refund_id=amazon_refund_id(refund_id, attempt),
            refund_reference_id=refund_reference_id(refund_id, attempt),
            state=state,
            reason_code=reason_code,
            amount=amount,
        )
        message = amazon_pay_message(
            data,
            notification_reference_id=notification_reference_id,
            seller_id=seller_id,
            **message_fields,
        )
        return api_event(self.signer.envelope(message, topic=topic))


def trust_local_authority(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint) -> LocalIpns:
    signer = Signer.local()
    monkeypatch.setenv("REFUNDS_LOCAL_SNS_CA_PEM", signer.ca_pem)
    monkeypatch.setenv("REFUNDS_LOCAL_SNS_CERT_URL_PREFIX", LOCAL_PREFIX)
    endpoint.install(signer.fetch)
    return LocalIpns(signer)
