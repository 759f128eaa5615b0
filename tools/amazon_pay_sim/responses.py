"""MWS XML answers shaped like Amazon's fixtures: default namespace, RequestId in ResponseMetadata."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from xml.etree.ElementTree import Element, SubElement, tostring

from amazon_pay_refunds.money import format_amount

from .state import Capture, MwsError, Refund

NAMESPACE = "http://mws.amazonservices.com/schema/OffAmazonPayments/2013-01-01"
IPN_NAMESPACE = "https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def new_request_id() -> str:
    return str(uuid.uuid4())


def iso_millis(moment: datetime) -> str:
    """Amazon's timestamp form: 2015-11-02T21:18:17.751Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _document(root: Element) -> str:
    return XML_DECLARATION + "\n" + tostring(root, encoding="unicode")


def _root(name: str) -> Element:
    return Element(name, {"xmlns": NAMESPACE})


def _text(parent: Element, name: str, value: str | None) -> Element:
    child = SubElement(parent, name)
    if value is not None:
        child.text = value
    return child


def _price(parent: Element, name: str, amount: Decimal, currency_code: str) -> None:
    price = SubElement(parent, name)
    _text(price, "CurrencyCode", currency_code)
    _text(price, "Amount", format_amount(amount, currency_code))


def _metadata(root: Element, request_id: str) -> None:
    _text(SubElement(root, "ResponseMetadata"), "RequestId", request_id)


def _refund_details(parent: Element, refund: Refund) -> None:
    details = SubElement(parent, "RefundDetails")
    _text(details, "AmazonRefundId", refund.amazon_refund_id)
    _text(details, "RefundReferenceId", refund.refund_reference_id)
    _text(details, "SellerRefundNote", refund.seller_refund_note)
    _text(details, "RefundType", refund.refund_type)
    _price(details, "RefundAmount", refund.amount, refund.currency_code)
    _price(details, "FeeRefunded", Decimal(0), refund.currency_code)
    _text(details, "CreationTimestamp", iso_millis(refund.created_at))
    status = SubElement(details, "RefundStatus")
    _text(status, "State", refund.state)
    _text(status, "LastUpdateTimestamp", iso_millis(refund.updated_at))
    if refund.reason_code is not None:
        _text(status, "ReasonCode", refund.reason_code)
    if refund.reason_description is not None:
        _text(status, "ReasonDescription", refund.reason_description)
    if refund.soft_descriptor is not None:
        _text(details, "SoftDescriptor", f"AMZ*{refund.soft_descriptor}")


def refund_response(refund: Refund, request_id: str) -> str:
    root = _root("RefundResponse")
    _refund_details(SubElement(root, "RefundResult"), refund)
    _metadata(root, request_id)
    return _document(root)


def get_refund_details_response(refund: Refund, request_id: str) -> str:
    root = _root("GetRefundDetailsResponse")
    _refund_details(SubElement(root, "GetRefundDetailsResult"), refund)
    _metadata(root, request_id)
    return _document(root)


def refund_notification(refund: Refund) -> str:
    """An IPN's NotificationData: the refund's RefundDetails in a RefundNotification, as Amazon sends it."""
    root = Element("RefundNotification", {"xmlns": IPN_NAMESPACE})
    _refund_details(root, refund)
    return XML_DECLARATION + tostring(root, encoding="unicode")


def get_capture_details_response(
    capture: Capture, refunded_amount: Decimal, refund_ids: Sequence[str], request_id: str
) -> str:
    root = _root("GetCaptureDetailsResponse")
    details = SubElement(SubElement(root, "GetCaptureDetailsResult"), "CaptureDetails")
    _text(details, "AmazonCaptureId", capture.amazon_capture_id)
    _text(details, "CaptureReferenceId", capture.capture_reference_id)
    _price(details, "CaptureAmount", capture.amount, capture.currency_code)
    _price(details, "RefundedAmount", refunded_amount, capture.currency_code)
    _price(details, "CaptureFee", Decimal(0), capture.currency_code)
    id_list = SubElement(details, "IdList")
    for refund_id in refund_ids:
        _text(id_list, "member", refund_id)
    _text(details, "CreationTimestamp", iso_millis(capture.created_at))
    status = SubElement(details, "CaptureStatus")
    _text(status, "State", capture.state)
    _text(status, "LastUpdateTimestamp", iso_millis(capture.updated_at))
    if capture.reason_code is not None:
        _text(status, "ReasonCode", capture.reason_code)
    _text(details, "SellerCaptureNote", None)
    _text(details, "SoftDescriptor", "AMZ*Local Sandbox")
    _metadata(root, request_id)
    return _document(root)


def get_service_status_response(now: datetime, request_id: str) -> str:
    root = _root("GetServiceStatusResponse")
    result = SubElement(root, "GetServiceStatusResult")
    _text(result, "Status", "GREEN")
    _text(result, "Timestamp", iso_millis(now))
    _metadata(root, request_id)
    return _document(root)


def error_response(error: MwsError, request_id: str) -> str:
    """ErrorResponse/Error{Type, Code, Message} and RequestId (throttling answers spell it RequestID)."""
    root = _root("ErrorResponse")
    body = SubElement(root, "Error")
    _text(body, "Type", error.error_type)
    _text(body, "Code", error.code)
    _text(body, "Message", error.message)
    _text(root, "RequestID" if error.code == "RequestThrottled" else "RequestId", request_id)
    return _document(root)
