"""Amazon Pay IPNs inside verified SNS notifications: the `Message` fields, the safe XML entry, and the
binding of a notification to this deployment (allowed topics and sellers).

`NotificationData` stays a string: `amazon_pay_refunds.adapters.mws.parse` reads refund and capture
details from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml import ElementTree as SafeElementTree

from .errors import MalformedNotification, NotAuthentic, Reason
from .message import MessageType, SnsMessage, load_json_object

# The AWS account that publishes Amazon Pay IPN topics (arn:aws:sns:{region}:291180941288:{prefix}{SellerId}).
AMAZON_PAY_IPN_ACCOUNTS = frozenset({"291180941288"})
# Topic ARNs of the `aws` partition only: Amazon Pay publishes no IPN topic in China or GovCloud (and no
# certificate is fetched from those partitions' hosts), so an ARN there names nothing this service serves.
_TOPIC_ARN = re.compile(r"arn:aws:sns:[a-z0-9-]+:(?P<account>[0-9]{12}):(?P<name>[A-Za-z0-9_-]{1,256})")
# Amazon Pay names a seller's topic `{marketplace prefix}{SellerId}`; the prefixes seen are marketplace ids
# (A3BXB0YN3XH17H, A1G8446IYHA4MR, 14 characters), upper-case letters and digits like SellerIds.
_MARKETPLACE_PREFIX = re.compile(r"[A-Z0-9]{10,16}")


@dataclass(frozen=True, slots=True)
class AmazonPayNotification:
    """The Amazon Pay fields of an IPN's `Message`; `notification_data` is the raw XML string."""

    notification_reference_id: str
    notification_type: str
    seller_id: str
    notification_data: str
    marketplace_id: str | None = None
    release_environment: str | None = None
    version: str | None = None
    timestamp: str | None = None
    is_sample: bool = False
    # Amazon Pay API v2 (`NotificationVersion` V2): which object changed; the message carries no state.
    object_type: str | None = None
    object_id: str | None = None
    charge_permission_id: str | None = None  # v2: `ChargePermissionId`, the object's charge permission

    @property
    def is_v2(self) -> bool:
        return self.version == V2_NOTIFICATION_VERSION


def _text(document: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = document.get(name)
    if value is None:
        if required:
            raise MalformedNotification(Reason.FIELD_MISSING, f"Message.{name} is missing")
        return None
    if not isinstance(value, str) or (required and not value):
        raise MalformedNotification(Reason.FIELD_INVALID, f"Message.{name} is not a non-empty string")
    return value


def _is_sample(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise MalformedNotification(Reason.FIELD_INVALID, "Message.IsSample is not a boolean")


V2_NOTIFICATION_VERSION = "V2"


def _v2_notification(document: dict[str, Any]) -> AmazonPayNotification:
    """An API v2 IPN: `MerchantID`, `ObjectType`, `ObjectId`, `NotificationId`, `NotificationType`,
    `ChargePermissionId` (optional here: only a CHARGEBACK needs it, use_cases/notifications.py)."""
    notification_id = _text(document, "NotificationId", required=True)
    seller_id = _text(document, "MerchantID", required=True)
    object_type = _text(document, "ObjectType", required=True)
    object_id = _text(document, "ObjectId", required=True)
    assert notification_id is not None and seller_id is not None
    return AmazonPayNotification(
        notification_reference_id=notification_id,
        notification_type=_text(document, "NotificationType", required=False) or "STATE_CHANGE",
        seller_id=seller_id,
        notification_data="",
        version=V2_NOTIFICATION_VERSION,
        object_type=object_type,
        object_id=object_id,
        charge_permission_id=_text(document, "ChargePermissionId", required=False) or None,
    )


def parse_notification(message: str) -> AmazonPayNotification:
    """Parse the Amazon Pay JSON carried in an SNS `Message` (v1, or API v2 with `NotificationVersion`
    V2); raises MalformedNotification."""
    document = load_json_object(
        message, not_json=Reason.NOTIFICATION_NOT_JSON, not_object=Reason.NOTIFICATION_NOT_OBJECT
    )
    if document.get("NotificationVersion") == V2_NOTIFICATION_VERSION:
        return _v2_notification(document)
    reference_id = _text(document, "NotificationReferenceId", required=True)
    notification_type = _text(document, "NotificationType", required=True)
    seller_id = _text(document, "SellerId", required=True)
    data = _text(document, "NotificationData", required=True)
    assert reference_id is not None and notification_type is not None
    assert seller_id is not None and data is not None
    return AmazonPayNotification(
        notification_reference_id=reference_id,
        notification_type=notification_type,
        seller_id=seller_id,
        notification_data=data,
        marketplace_id=_text(document, "MarketplaceID", required=False),
        release_environment=_text(document, "ReleaseEnvironment", required=False),
        version=_text(document, "Version", required=False),
        timestamp=_text(document, "Timestamp", required=False),
        is_sample=_is_sample(document.get("IsSample")),
    )


def notification_xml(data: str) -> Element:
    """Parse `NotificationData` with DTDs, entities and external references refused."""
    try:
        return SafeElementTree.fromstring(data.encode("utf-8"), forbid_dtd=True)  # type: ignore[no-any-return]
    except defusedxml.DefusedXmlException:
        raise MalformedNotification(
            Reason.NOTIFICATION_XML_FORBIDDEN, "NotificationData declares a DTD or entities"
        ) from None
    except (ParseError, UnicodeEncodeError, ValueError):
        raise MalformedNotification(Reason.NOTIFICATION_XML_INVALID, "NotificationData is not XML") from None


def is_topic_arn(text: str) -> bool:
    """An SNS topic ARN of the `aws` partition."""
    return _TOPIC_ARN.fullmatch(text) is not None


def topic_sellers(topic_arn: str, seller_ids: Iterable[str], accounts: frozenset[str]) -> frozenset[str]:
    """The sellers among `seller_ids` whose Amazon Pay IPN topic `topic_arn` is: in one of `accounts`, and
    named `{marketplace prefix}{SellerId}`."""
    match = _TOPIC_ARN.fullmatch(topic_arn)
    if match is None or match["account"] not in accounts:
        return frozenset()
    name = match["name"]
    return frozenset(
        seller
        for seller in seller_ids
        if seller and name.endswith(seller) and _MARKETPLACE_PREFIX.fullmatch(name[: -len(seller)])
    )


@dataclass(frozen=True)
class DeploymentBinding:
    """Which topics and sellers this deployment accepts IPNs from (CONTRACT §8: IPN_TOPIC_ARNS, SELLER_IDS).

    With topics listed, a message (of any type) must come from one of them. With none listed, the topic must
    be the Amazon Pay IPN topic of one of the listed sellers: in Amazon Pay's IPN account (anyone can get
    SNS to sign a message on a topic of their own, so a SellerId inside the message proves nothing by
    itself), named `{marketplace prefix}{SellerId}`; another merchant's topic in that account is refused,
    so its SubscriptionConfirmation is never confirmed, and a notification must name its topic's seller.
    With sellers listed, the IPN's SellerId must be one of them. Topic ARNs are of the `aws` partition.
    """

    topic_arns: frozenset[str] = frozenset()
    seller_ids: frozenset[str] = frozenset()
    topic_accounts: frozenset[str] = AMAZON_PAY_IPN_ACCOUNTS

    def __post_init__(self) -> None:
        if not self.topic_arns and not self.seller_ids:
            raise ValueError("a deployment binding needs allowed topic ARNs or seller ids")
        if not all(is_topic_arn(arn) for arn in self.topic_arns):
            raise ValueError("allowed topics must be SNS topic ARNs of the aws partition")

    @classmethod
    def of(cls, *, topic_arns: Iterable[str] = (), seller_ids: Iterable[str] = ()) -> DeploymentBinding:
        return cls(frozenset(topic_arns), frozenset(seller_ids))

    def check_topic(self, topic_arn: str) -> None:
        if self.topic_arns:
            allowed = topic_arn in self.topic_arns
        else:
            allowed = bool(topic_sellers(topic_arn, self.seller_ids, self.topic_accounts))
        if not allowed:
            raise NotAuthentic(Reason.TOPIC_NOT_ALLOWED, "the topic is not one this deployment accepts")

    def check_seller(self, seller_id: str) -> None:
        if self.seller_ids and seller_id not in self.seller_ids:
            raise NotAuthentic(Reason.SELLER_NOT_ALLOWED, "the seller is not one this deployment accepts")

    def check(self, message: SnsMessage) -> AmazonPayNotification | None:
        """Topic (every type) and seller (notifications); the parsed IPN for notifications, else None."""
        self.check_topic(message.topic_arn)
        if message.type is not MessageType.NOTIFICATION:
            return None
        notification = parse_notification(message.message)
        self.check_seller(notification.seller_id)
        if not self.topic_arns and notification.seller_id not in topic_sellers(
            message.topic_arn, self.seller_ids, self.topic_accounts
        ):
            raise NotAuthentic(Reason.SELLER_NOT_ALLOWED, "the IPN's seller is not its topic's seller")
        return notification
