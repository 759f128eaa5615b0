"""The SNS HTTP envelope: strict parsing and the exact bytes SNS signed."""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from operator import itemgetter
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


_JSON_WHITESPACE = " \t\r\n"
# One decoder for every call: json.loads with keyword arguments builds a new one each time.
_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)
# Its C scanner, called directly: JSONDecoder.raw_decode only wraps it to turn StopIteration into an error.
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def load_json_object(text: str, *, not_json: Reason, not_object: Reason) -> dict[str, Any]:
    """Decode JSON text, refusing duplicate keys, NaN/Infinity and anything but an object at the top."""
    # Scans from the first non-whitespace character instead of stripping: no copy of the whole body.
    start = len(text) - len(text.lstrip(_JSON_WHITESPACE)) if text[:1] in _JSON_WHITESPACE else 0
    try:
        value, end = _SCAN_ONCE(text, start)
    except (StopIteration, ValueError, RecursionError):  # StopIteration: no JSON value at all
        raise MalformedNotification(not_json, "the body is not valid JSON") from None
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        raise MalformedNotification(not_json, "the body is not valid JSON")
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
    if type(body) is bytes and len(body) <= MAX_BODY_BYTES:  # what a handler passes: one test, one decode
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNotification(Reason.BODY_NOT_UTF8, "the body is not UTF-8") from None
    if isinstance(body, str):
        # A str body is measured as the UTF-8 bytes SNS would have sent.
        try:
            size = len(body.encode("utf-8"))
        except UnicodeEncodeError:
            raise MalformedNotification(Reason.BODY_NOT_UTF8, "the body is not UTF-8") from None
        text = body
    else:
        size = len(body)
    if size > MAX_BODY_BYTES:
        raise MalformedNotification(Reason.BODY_TOO_LARGE, f"the body exceeds {MAX_BODY_BYTES} bytes")
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNotification(Reason.BODY_NOT_UTF8, "the body is not UTF-8") from None
    return text


_TYPES = {member.value: member for member in MessageType}
_NOTIFICATION = MessageType.NOTIFICATION
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


def _strings(document: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    values: list[str] = [document.get(name) for name in names]  # type: ignore[misc]
    for value in values:
        if type(value) is not str:
            name = names[values.index(value)]
            if value is None:
                raise MalformedNotification(Reason.FIELD_MISSING, f"{name} is missing")
            raise MalformedNotification(Reason.FIELD_INVALID, f"{name} is not a string")
    return values


def _optional(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is not None and type(value) is not str:
        raise MalformedNotification(Reason.FIELD_INVALID, f"{name} is not a string")
    return value


# The fields of a Notification, in one C call (KeyError if one is missing).
_NOTIFICATION_FIELDS = itemgetter(
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
)
_NOTIFICATION_TEXT = MessageType.NOTIFICATION.value
_from_iso_format = datetime.fromisoformat


def parse_sns_message(body: str | bytes) -> SnsMessage:
    """Parse an SNS HTTP POST body; raises MalformedNotification naming the first problem.

    The common case, a well-formed Notification, takes a straight path with the same checks; anything
    else (a missing or non-string field, another Type) is left to `_parse_document`, which names the
    first problem exactly as before. Whatever either path returns or raises, the other would too.
    """
    document = load_json_object(
        _decode_body(body), not_json=Reason.BODY_NOT_JSON, not_object=Reason.BODY_NOT_OBJECT
    )
    try:
        fields = _NOTIFICATION_FIELDS(document)
    except KeyError:
        return _parse_document(document)
    type_text, message_id, topic_arn, message, timestamp_text, version, signature_text, cert_url = fields
    get = document.get
    subject, unsubscribe_url = get("Subject"), get("UnsubscribeURL")
    if not (
        str
        is type(type_text)
        is type(message_id)
        is type(topic_arn)
        is type(message)
        is type(timestamp_text)
        is type(version)
        is type(signature_text)
        is type(cert_url)
        and type_text == _NOTIFICATION_TEXT
        and (subject is None or type(subject) is str)
        and (unsubscribe_url is None or type(unsubscribe_url) is str)
    ):
        return _parse_document(document)
    # From here on, the checks and their order are _parse_document's for a Notification.
    try:
        signature = binascii.a2b_base64(signature_text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedNotification(Reason.SIGNATURE_NOT_BASE64, "Signature is not base64") from None
    if not signature:
        raise MalformedNotification(Reason.SIGNATURE_NOT_BASE64, "Signature is empty")
    try:
        moment = _from_iso_format(timestamp_text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or len(timestamp_text) < 20 or timestamp_text[10] != "T":
        moment = parse_timestamp(timestamp_text)  # raises, naming the problem
    # tuple.__new__ skips the NamedTuple's Python-level __new__: this runs for every IPN.
    return tuple.__new__(
        SnsMessage,
        (
            _NOTIFICATION,
            message_id,
            topic_arn,
            message,
            moment,
            timestamp_text,
            version,
            signature,
            cert_url,
            subject,
            None,
            None,
            unsubscribe_url,
        ),
    )


def _parse_document(document: dict[str, Any]) -> SnsMessage:
    """Every message type, every field checked in turn: the first problem found is the one raised."""
    type_text = document.get("Type")
    if type_text is None:
        raise MalformedNotification(Reason.FIELD_MISSING, "Type is missing")
    message_type = _TYPES.get(type_text) if type(type_text) is str else None
    if message_type is None:
        raise MalformedNotification(Reason.MESSAGE_TYPE_UNKNOWN, "Type is not an SNS message type")
    message_id, topic_arn, message, timestamp_text, version, signature_text, cert_url = _strings(
        document, _REQUIRED
    )
    if message_type is _NOTIFICATION:
        subject, subscribe_url, token = _optional(document, "Subject"), None, None
    else:
        subject = None
        subscribe_url, token = _strings(document, _REQUIRED_FOR_SUBSCRIPTIONS)
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
    if message.type is _NOTIFICATION:
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
