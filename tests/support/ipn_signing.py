"""Signed SNS posts for the IPN handler's tests: Amazon Pay refund IPNs, subscription messages, API events.

Keys, certificates and the SNS string to sign come from `tests/unit/sns/forge.py` (written independently
of the verifier under test).
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from amazon_pay_refunds.adapters.sns import CertificateResponse
from tests.support.sns_forge import Identity, headers_for, make_identity, sign

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SELLER = "A1EXAMPLE"
OTHER_SELLER = "A2OTHERSELLER"
TOPIC = f"arn:aws:sns:us-east-1:291180941288:A3BXB0YN3XH17H{SELLER}"
OTHER_TOPIC = f"arn:aws:sns:us-east-1:291180941288:A3BXB0YN3XH17H{OTHER_SELLER}"
SNS_CERT_URL = (
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
)
LOCAL_PREFIX = "http://127.0.0.1:8701/sns/"
LOCAL_CERT_URL = f"{LOCAL_PREFIX}sns-signing.pem"
_counter = itertools.count(1)


def sns_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def refund_notification_xml(
    *,
    amazon_refund_id: str,
    refund_reference_id: str | None,
    state: str,
    reason_code: str | None = None,
    amount: str = "12.50",
    currency_code: str = "USD",
    refund_type: str = "SellerInitiated",
) -> str:
    reference = (
        "" if refund_reference_id is None else f"<RefundReferenceId>{refund_reference_id}</RefundReferenceId>"
    )
    reason = "" if reason_code is None else f"<ReasonCode>{reason_code}</ReasonCode>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<RefundNotification xmlns="https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01">'
        f"<RefundDetails><AmazonRefundId>{amazon_refund_id}</AmazonRefundId>{reference}"
        f"<RefundType>{refund_type}</RefundType>"
        f"<RefundAmount><Amount>{amount}</Amount><CurrencyCode>{currency_code}</CurrencyCode></RefundAmount>"
        f"<FeeRefunded><Amount>0.00</Amount><CurrencyCode>{currency_code}</CurrencyCode></FeeRefunded>"
        "<CreationTimestamp>2024-05-01T11:00:00.000Z</CreationTimestamp>"
        f"<RefundStatus><State>{state}</State>{reason}"
        "<LastUpdateTimestamp>2024-05-01T11:59:00.000Z</LastUpdateTimestamp></RefundStatus>"
        "<SoftDescriptor>AMZ*Returns</SoftDescriptor></RefundDetails></RefundNotification>"
    )


def amazon_pay_message(
    notification_data: str,
    *,
    notification_reference_id: str | None = None,
    notification_type: str = "PaymentRefund",
    seller_id: str = SELLER,
    release_environment: str = "Sandbox",
    **extra: Any,
) -> str:
    document = {
        "ReleaseEnvironment": release_environment,
        "MarketplaceID": "A3BXB0YN3XH17H",
        "Version": "2013-01-01",
        "NotificationType": notification_type,
        "SellerId": seller_id,
        "NotificationReferenceId": notification_reference_id or f"nref-{next(_counter):08d}",
        "Timestamp": sns_timestamp(NOW - timedelta(seconds=30)),
        "NotificationData": notification_data,
        **extra,
    }
    return json.dumps(document, separators=(",", ":")).replace("/", "\\/")


@dataclass
class Signer:
    """An SNS signing identity and the certificate URL it is served from."""

    identity: Identity
    cert_url: str
    authority: Identity | None = None
    served: dict[str, CertificateResponse] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.served[self.cert_url] = CertificateResponse(200, self.identity.pem)

    @classmethod
    def sns(cls) -> Signer:
        """A self-signed `sns.amazonaws.com` certificate on a genuine SNS URL (production trust accepts it
        when the fetcher serves it: production trust rests on the URL and the subject)."""
        return cls(make_identity("sns.amazonaws.com"), SNS_CERT_URL)

    @classmethod
    def local(cls) -> Signer:
        """A local CA and a signing certificate it issued, served under LOCAL_PREFIX."""
        authority = make_identity("ipn-handler test CA", is_ca=True)
        return cls(make_identity("sns.amazonaws.com", issuer=authority), LOCAL_CERT_URL, authority)

    @property
    def ca_pem(self) -> str:
        assert self.authority is not None
        return self.authority.pem.decode("ascii")

    def fetch(self, url: str) -> CertificateResponse:
        self.fetched.append(url)
        return self.served.get(url, CertificateResponse(404, b""))

    def envelope(
        self,
        message: str,
        *,
        topic: str = TOPIC,
        message_type: str = "Notification",
        timestamp: datetime = NOW - timedelta(seconds=20),
        message_id: str | None = None,
        subscribe_url: str | None = None,
        token: str | None = None,
        version: str = "1",
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "Type": message_type,
            "MessageId": message_id or f"0000{next(_counter):04d}-0000-5000-8000-000000000001",
            "TopicArn": topic,
            "Message": message,
            "Timestamp": sns_timestamp(timestamp),
            "SignatureVersion": version,
            "SigningCertURL": self.cert_url,
            "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:x",
        }
        if message_type != "Notification":
            document["SubscribeURL"] = subscribe_url
            document["Token"] = token
        document["Signature"] = sign(document, self.identity.key, version)
        return document


def api_event(
    document: dict[str, Any] | str, *, headers: dict[str, str] | None = None, base64_body: bool = False
) -> dict[str, Any]:
    """An API Gateway REST proxy event posting `document` (a signed envelope, or a raw body string)."""
    body = document if isinstance(document, str) else json.dumps(document, indent=2)
    if headers is None:
        headers = headers_for(document) if isinstance(document, dict) else {"Content-Type": "text/plain"}
    return {
        "resource": "/ipn",
        "path": "/ipn",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "body": base64.b64encode(body.encode("utf-8")).decode("ascii") if base64_body else body,
        "isBase64Encoded": base64_body,
        "requestContext": {"requestId": "req-1", "stage": "v1"},
    }
