"""The SNS HTTP envelope: strict parsing and the exact bytes SNS signed."""

from __future__ import annotations

import binascii
import json
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from .errors import MalformedNotification, Reason

# An SNS message is at most 256 KiB of payload; the envelope adds a little. Anything larger is not SNS.
MAX_BODY_BYTES = 300 * 1024


class MessageType(StrEnum):
    NOTIFICATION = "Notification"
    SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
    UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"


class SnsMessage(NamedTuple):
    """A parsed SNS envelope. Nothing here is trusted until `SnsVerifier.verify` returned it."""

    type: MessageType
    message_id: str
    topic_arn: str
    message: str
    timestamp: datetime
    timestamp_text: str
    signature_version: str
    signature: bytes
    signing_cert_url: str
    subject: str | None = None
    subscribe_url: str | None = None
    token: str | None = None
    unsubscribe_url: str | None = None


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers that pick different copies of a duplicated field are a classic signature bypass.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedNotification(Reason.DUPLICATE_FIELD, "a field appears more than once")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every call (json.loads with keyword arguments would build a new one each time).
_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)


def load_json_object(text: str, *, not_json: Reason, not_object: Reason) -> dict[str, Any]:
    """Decode JSON text, refusing duplicate keys, NaN/Infinity and anything but an object at the top."""
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise MalformedNotification(not_json, "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedNotification(not_object, "the JSON is not an object")
    return value


def parse_timestamp(text: str) -> datetime:
    """SNS/Amazon Pay ISO 8601 time with an explicit zone, e.g. 2017-06-28T18:15:08.017Z."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedNotification(Reason.TIMESTAMP_INVALID, "Timestamp is not an ISO 8601 time") from None
    if moment.tzinfo is None or len(text) < 20 or text[10] != "T":
        raise MalformedNotification(Reason.TIMESTAMP_INVALID, "Timestamp needs a date, a time and a zone")
    return moment


def _decode_body(body: str | bytes) -> str:
    """The body as text, at most MAX_BODY_BYTES of UTF-8 (a str body is measured as the bytes SNS sent)."""
    try:
        raw = body.encode("utf-8") if isinstance(body, str) else body
    except UnicodeEncodeError:
        raise MalformedNotification(Reason.BODY_NOT_UTF8, "the body is not UTF-8") from None
    if len(raw) > MAX_BODY_BYTES:
        raise MalformedNotification(Reason.BODY_TOO_LARGE, f"the body exceeds {MAX_BODY_BYTES} bytes")
    if isinstance(body, str):
        return body
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedNotification(Reason.BODY_NOT_UTF8, "the body is not UTF-8") from None


_TYPES = {member.value: member for member in MessageType}
_REQUIRED = (
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
)
_REQUIRED_FOR_SUBSCRIPTIONS = ("SubscribeURL", "Token")


def _string(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if value is None:
        raise MalformedNotification(Reason.FIELD_MISSING, f"{name} is missing")
    if not isinstance(value, str):
        raise MalformedNotification(Reason.FIELD_INVALID, f"{name} is not a string")
    return value


def _optional(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedNotification(Reason.FIELD_INVALID, f"{name} is not a string")
    return value


def parse_sns_message(body: str | bytes) -> SnsMessage:
    """Parse an SNS HTTP POST body; raises MalformedNotification naming the first problem.

    Strict: at most MAX_BODY_BYTES of UTF-8, one JSON object without duplicate keys or NaN/Infinity, a
    known Type, every field of that type present and a string, Signature non-empty base64, Timestamp an
    ISO 8601 time with a zone. Fields are checked in a fixed order: the first problem found is raised.
    """
    document = load_json_object(
        _decode_body(body), not_json=Reason.BODY_NOT_JSON, not_object=Reason.BODY_NOT_OBJECT
    )
    type_text = document.get("Type")
    if type_text is None:
        raise MalformedNotification(Reason.FIELD_MISSING, "Type is missing")
    message_type = _TYPES.get(type_text) if isinstance(type_text, str) else None
    if message_type is None:
        raise MalformedNotification(Reason.MESSAGE_TYPE_UNKNOWN, "Type is not an SNS message type")
    message_id, topic_arn, message, timestamp_text, version, signature_text, cert_url = (
        _string(document, name) for name in _REQUIRED
    )
    if message_type is MessageType.NOTIFICATION:
        subject, subscribe_url, token = _optional(document, "Subject"), None, None
    else:
        subject = None
        subscribe_url, token = (_string(document, name) for name in _REQUIRED_FOR_SUBSCRIPTIONS)
    try:
        signature = binascii.a2b_base64(signature_text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedNotification(Reason.SIGNATURE_NOT_BASE64, "Signature is not base64") from None
    if not signature:
        raise MalformedNotification(Reason.SIGNATURE_NOT_BASE64, "Signature is empty")
    return SnsMessage(
        message_type,
        message_id,
        topic_arn,
        message,
        parse_timestamp(timestamp_text),
        timestamp_text,
        version,
        signature,
        cert_url,
        subject,
        subscribe_url,
        token,
        _optional(document, "UnsubscribeURL"),
    )


def string_to_sign(message: SnsMessage) -> bytes:
    """The bytes SNS signed: `key\\nvalue\\n` per field of the message's type, Message exactly as received."""
    if message.type is MessageType.NOTIFICATION:
        subject = "" if message.subject is None else f"Subject\n{message.subject}\n"
        text = (
            f"Message\n{message.message}\nMessageId\n{message.message_id}\n{subject}"
            f"Timestamp\n{message.timestamp_text}\nTopicArn\n{message.topic_arn}\nType\n{message.type.value}\n"
        )
    else:
        text = (
            f"Message\n{message.message}\nMessageId\n{message.message_id}\n"
            f"SubscribeURL\n{message.subscribe_url}\nTimestamp\n{message.timestamp_text}\n"
            f"Token\n{message.token}\nTopicArn\n{message.topic_arn}\nType\n{message.type.value}\n"
        )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # JSON escapes can smuggle lone surrogates, which no UTF-8 signer could have signed.
        raise MalformedNotification(Reason.FIELD_INVALID, "a signed field is not valid Unicode") from None
