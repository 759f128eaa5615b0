"""Test-only SNS signing: our own keys and certificates, and an independent string-to-sign.

The string to sign is re-implemented here from the protocol description (not imported from the code
under test), so that a forged message and the verifier agree only if both follow SNS.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from amazon_pay_refunds.adapters.sns import CertificateResponse

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TIMESTAMP = "2024-05-01T11:59:30.123Z"
CERT_URL = (
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
)
SELLER = "A1EXAMPLESELLER"
TOPIC = f"arn:aws:sns:us-east-1:291180941288:A3BXB0YN3XH17H{SELLER}"
REFUND_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<RefundNotification xmlns="https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01">'
    "<RefundDetails><AmazonRefundId>S01-1234567-1234567-R000001</AmazonRefundId>"
    "<RefundStatus><State>Completed</State></RefundStatus></RefundDetails></RefundNotification>"
)


@dataclass(frozen=True)
class Identity:
    """A key and the certificate that names it."""

    key: Any
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_identity(
    common_name: str,
    *,
    issuer: Identity | None = None,
    key: Any = None,
    not_before: datetime = NOW - timedelta(days=30),
    not_after: datetime = NOW + timedelta(days=335),
    is_ca: bool = False,
) -> Identity:
    key = key if key is not None else rsa_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_key = issuer.key if issuer is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    return Identity(key, builder.sign(signer_key, hashes.SHA256()))


def string_to_sign(envelope: dict[str, Any]) -> bytes:
    if envelope["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{envelope[k]}\n" for k in keys if envelope.get(k) is not None).encode("utf-8")


def sign(envelope: dict[str, Any], key: rsa.RSAPrivateKey, version: str) -> str:
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 (SNS SignatureVersion 1)
    return base64.b64encode(key.sign(string_to_sign(envelope), padding.PKCS1v15(), algorithm)).decode()


def ipn_message(*, seller_id: str = SELLER, notification_data: str = REFUND_XML, **fields: Any) -> str:
    document = {
        "ReleaseEnvironment": "Sandbox",
        "MarketplaceID": "136311",
        "Version": "2013-01-01",
        "NotificationType": "PaymentRefund",
        "SellerId": seller_id,
        "NotificationReferenceId": "8f6f3e2a-0000-4000-8000-000000000001",
        "Timestamp": TIMESTAMP,
        "NotificationData": notification_data,
        **fields,
    }
    return json.dumps(document).replace("/", "\\/")  # Amazon escapes slashes, as the fixtures show


def envelope(
    signer: Identity,
    *,
    message: str | None = None,
    version: str = "2",
    cert_url: str = CERT_URL,
    topic: str = TOPIC,
    message_type: str = "Notification",
    timestamp: str = TIMESTAMP,
    subject: str | None = None,
    subscribe_url: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "Type": message_type,
        "MessageId": "1d3e0f0a-0000-5000-8000-000000000001",
        "TopicArn": topic,
        "Message": ipn_message() if message is None else message,
        "Timestamp": timestamp,
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
        "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:x",
    }
    if subject is not None:
        document["Subject"] = subject
    if message_type != "Notification":
        document["SubscribeURL"] = subscribe_url
        document["Token"] = token
    document["Signature"] = sign(document, signer.key, version)
    return document


def body(document: Any) -> str:
    return json.dumps(document, indent=2)


def headers_for(document: dict[str, Any]) -> dict[str, str]:
    return {
        "x-amz-sns-message-type": document["Type"],
        "x-amz-sns-message-id": document["MessageId"],
        "x-amz-sns-topic-arn": document["TopicArn"],
        "Content-Type": "text/plain; charset=UTF-8",
    }


class SpyFetcher:
    """Serves fixed answers by URL and records every URL asked for (404 for anything unknown)."""

    def __init__(self, responses: dict[str, CertificateResponse] | None = None) -> None:
        self.responses = dict(responses or {})
        self.urls: list[str] = []

    def __call__(self, url: str) -> CertificateResponse:
        self.urls.append(url)
        return self.responses.get(url, CertificateResponse(404, b""))


def ec_identity(common_name: str) -> Identity:
    return make_identity(common_name, key=ec.generate_private_key(ec.SECP256R1()))
