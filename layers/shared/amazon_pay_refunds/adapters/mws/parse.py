"""Amazon Pay v1 XML → typed models, by element local name (namespaces and element order ignored).

The same RefundDetails / CaptureDetails structures arrive in API responses and inside IPN
NotificationData under another namespace, so the element parsers here serve both. DTDs and entities
are refused outright (defusedxml).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from ...money import parse_reported_amount
from .errors import MALFORMED_RESPONSE, AmazonPayError
from .models import (
    AmazonRefundStatus,
    CaptureDetails,
    CaptureStatus,
    Price,
    RefundDetails,
    ServiceMessage,
    ServiceStatus,
)

T = TypeVar("T")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,16})?")


class MalformedXml(ValueError):
    """A document that is not well-formed, carries a DTD or entity, or lacks a required element."""


# ---------------------------------------------------------------------------------------------------
# Element helpers


def parse_xml(data: bytes | str) -> Element:
    """The document's root element; DTDs, entities and external references refused."""
    try:
        root: Element = SafeElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise MalformedXml(f"refused XML: {type(exc).__name__}") from None
    except ParseError as exc:
        raise MalformedXml(f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError):
        # expat refuses some declared encodings (UTF-7, UTF-16 on a byte string) with a bare ValueError,
        # and an unknown one with LookupError: an answer nobody can read is malformed, like any other.
        raise MalformedXml("the XML declares an encoding that cannot be read") from None
    return root


def local_name(element: Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if local_name(child) == name)


def _child(element: Element, name: str) -> Element | None:
    return next(_children(element, name), None)


def find_first(root: Element, name: str) -> Element | None:
    """The first element named ``name`` (local name) in document order, the root included."""
    return next((el for el in root.iter() if local_name(el) == name), None)


def _text(element: Element, name: str) -> str | None:
    """The stripped text of a direct child; None when absent or empty."""
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _required_text(element: Element, name: str) -> str:
    text = _text(element, name)
    if text is None:
        raise MalformedXml(f"{local_name(element)}/{name} is missing or empty")
    return text


def _decimal(text: str, where: str) -> Decimal:
    # Plain digits only: Decimal would also read `1e999999999`, which no store can hold (DynamoDB numbers have
    # at most 38 digits; the overflow would surface far from here, as a 500).
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise MalformedXml(f"{where} is not a plain decimal number")
    try:
        value = parse_reported_amount(text)
    except InvalidOperation:
        raise MalformedXml(f"{where} is not a decimal number") from None
    if not value.is_finite():
        raise MalformedXml(f"{where} is not a finite number")
    return value


def parse_timestamp(text: str) -> datetime:
    """Amazon's ISO 8601 timestamps (2015-11-02T21:18:17.751Z) as aware datetimes; naive means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedXml(f"{text!r} is not an ISO 8601 timestamp") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _timestamp(element: Element, name: str) -> datetime | None:
    text = _text(element, name)
    return None if text is None else parse_timestamp(text)


def _required_timestamp(element: Element, name: str) -> datetime:
    return parse_timestamp(_required_text(element, name))


def _price(element: Element, name: str) -> Price | None:
    child = _child(element, name)
    if child is None:
        return None
    where = f"{local_name(element)}/{name}"
    return Price(
        amount=_decimal(_required_text(child, "Amount"), f"{where}/Amount"),
        currency_code=_required_text(child, "CurrencyCode"),
    )


def _required_price(element: Element, name: str) -> Price:
    price = _price(element, name)
    if price is None:
        raise MalformedXml(f"{local_name(element)}/{name} is missing")
    return price


def _optional_decimal(element: Element, name: str) -> Decimal | None:
    text = _text(element, name)
    return None if text is None else _decimal(text, f"{local_name(element)}/{name}")


def _required_child(element: Element, name: str) -> Element:
    child = _child(element, name)
    if child is None:
        raise MalformedXml(f"{local_name(element)}/{name} is missing")
    return child


def _expect(element: Element, name: str) -> None:
    if local_name(element) != name:
        raise MalformedXml(f"expected a {name} element, got {local_name(element) or 'nothing'}")


# ---------------------------------------------------------------------------------------------------
# Reusable element parsers (API responses and IPN NotificationData)


def refund_details_from_element(element: Element, *, request_id: str | None = None) -> RefundDetails:
    _expect(element, "RefundDetails")
    status = _required_child(element, "RefundStatus")
    return RefundDetails(
        amazon_refund_id=_required_text(element, "AmazonRefundId"),
        # Amazon-initiated refunds (A-to-z claims, buyer cancellations) may carry no RefundReferenceId of
        # the seller's: "" then, which names no refund of ours.
        refund_reference_id=_text(element, "RefundReferenceId") or "",
        refund_type=_required_text(element, "RefundType"),
        refund_amount=_required_price(element, "RefundAmount"),
        fee_refunded=_price(element, "FeeRefunded"),
        creation_timestamp=_required_timestamp(element, "CreationTimestamp"),
        refund_status=AmazonRefundStatus(
            state=_required_text(status, "State"),
            last_update_timestamp=_timestamp(status, "LastUpdateTimestamp"),
            reason_code=_text(status, "ReasonCode"),
            reason_description=_text(status, "ReasonDescription"),
        ),
        seller_refund_note=_text(element, "SellerRefundNote"),
        soft_descriptor=_text(element, "SoftDescriptor"),
        converted_amount=_price(element, "ConvertedAmount"),
        conversion_rate=_optional_decimal(element, "ConversionRate"),
        request_id=request_id,
    )


def _id_list(element: Element) -> tuple[str, ...]:
    id_list = _child(element, "IdList")
    if id_list is None:
        return ()
    ids = (child.text.strip() for child in id_list if local_name(child) in {"member", "Id"} and child.text)
    return tuple(value for value in ids if value)


def capture_details_from_element(element: Element, *, request_id: str | None = None) -> CaptureDetails:
    _expect(element, "CaptureDetails")
    status = _required_child(element, "CaptureStatus")
    return CaptureDetails(
        amazon_capture_id=_required_text(element, "AmazonCaptureId"),
        capture_reference_id=_required_text(element, "CaptureReferenceId"),
        capture_amount=_required_price(element, "CaptureAmount"),
        refunded_amount=_required_price(element, "RefundedAmount"),
        capture_fee=_price(element, "CaptureFee"),
        capture_status=CaptureStatus(
            state=_required_text(status, "State"),
            reason_code=_text(status, "ReasonCode"),
            last_update_timestamp=_timestamp(status, "LastUpdateTimestamp"),
            reason_description=_text(status, "ReasonDescription"),
        ),
        id_list=_id_list(element),
        creation_timestamp=_required_timestamp(element, "CreationTimestamp"),
        seller_capture_note=_text(element, "SellerCaptureNote"),
        soft_descriptor=_text(element, "SoftDescriptor"),
        converted_amount=_price(element, "ConvertedAmount"),
        conversion_rate=_optional_decimal(element, "ConversionRate"),
        request_id=request_id,
    )


def _details_from_xml(text: str | bytes, name: str, parser: Callable[[Element], T]) -> T:
    element = find_first(parse_xml(text), name)
    if element is None:
        raise MalformedXml(f"no {name} element in the document")
    return parser(element)


def refund_details_from_xml(text: str | bytes) -> RefundDetails:
    """The first RefundDetails anywhere in a document (e.g. an IPN's NotificationData)."""
    return _details_from_xml(text, "RefundDetails", refund_details_from_element)


def capture_details_from_xml(text: str | bytes) -> CaptureDetails:
    """The first CaptureDetails anywhere in a document (e.g. an IPN's NotificationData)."""
    return _details_from_xml(text, "CaptureDetails", capture_details_from_element)


# ---------------------------------------------------------------------------------------------------
# Whole responses


def _request_id(root: Element) -> str | None:
    """RequestId, or RequestID as EU endpoints spell it, wherever it sits."""
    for element in root.iter():
        if local_name(element) in {"RequestId", "RequestID"} and element.text and element.text.strip():
            return element.text.strip()
    return None


def _response(body: bytes, root_name: str, result_name: str, parser: Callable[[Element, str | None], T]) -> T:
    try:
        root = parse_xml(body)
        _expect(root, root_name)
        result = _required_child(root, result_name)
        return parser(result, _request_id(root))
    except MalformedXml as exc:
        raise AmazonPayError(MALFORMED_RESPONSE, f"{root_name}: {exc}") from None


def parse_refund_response(body: bytes) -> RefundDetails:
    return _response(
        body,
        "RefundResponse",
        "RefundResult",
        lambda result, rid: refund_details_from_element(
            _required_child(result, "RefundDetails"), request_id=rid
        ),
    )


def parse_get_refund_details_response(body: bytes) -> RefundDetails:
    return _response(
        body,
        "GetRefundDetailsResponse",
        "GetRefundDetailsResult",
        lambda result, rid: refund_details_from_element(
            _required_child(result, "RefundDetails"), request_id=rid
        ),
    )


def parse_get_capture_details_response(body: bytes) -> CaptureDetails:
    return _response(
        body,
        "GetCaptureDetailsResponse",
        "GetCaptureDetailsResult",
        lambda result, rid: capture_details_from_element(
            _required_child(result, "CaptureDetails"), request_id=rid
        ),
    )


def _service_status(result: Element, request_id: str | None) -> ServiceStatus:
    messages = _child(result, "Messages")
    parsed: list[ServiceMessage] = []
    if messages is not None:
        for message in _children(messages, "Message"):
            text = _text(message, "Text")
            if text is not None:
                parsed.append(ServiceMessage(locale=_text(message, "Locale"), text=text))
    return ServiceStatus(
        status=_required_text(result, "Status"),
        timestamp=_timestamp(result, "Timestamp"),
        message_id=_text(result, "MessageId"),
        messages=tuple(parsed),
        request_id=request_id,
    )


def parse_service_status_response(body: bytes) -> ServiceStatus:
    return _response(body, "GetServiceStatusResponse", "GetServiceStatusResult", _service_status)


def parse_error_response(body: bytes, http_status: int | None) -> AmazonPayError:
    """Amazon's ErrorResponse/Error{Type, Code, Message} + RequestId|RequestID as an AmazonPayError.

    A body that is not an ErrorResponse (an HTML page from a proxy, garbage, a DTD) still yields an
    error: code MalformedResponse, retryable unless the HTTP status is 4xx.
    """
    try:
        root = parse_xml(body)
        _expect(root, "ErrorResponse")
        error = _required_child(root, "Error")
        code = _required_text(error, "Code")
    except MalformedXml as exc:
        return AmazonPayError(
            MALFORMED_RESPONSE, f"unreadable error response: {exc}", http_status=http_status
        )
    type_element = _child(error, "Type")
    error_type = None if type_element is None else (type_element.text or "").strip()
    return AmazonPayError(
        code,
        _text(error, "Message") or "",
        http_status=http_status,
        request_id=_request_id(root),
        error_type=error_type,
    )
