from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_refunds.adapters.mws import parse
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import AmazonRefundStatus, CaptureStatus, Price, ServiceStatus

PARSER_OF_FIXTURE: dict[str, Callable[[bytes], Any]] = {
    "RefundResponse.xml": parse.parse_refund_response,
    "GetRefundDetails.xml": parse.parse_get_refund_details_response,
    "GetRefundDetails_Multicurrency.xml": parse.parse_get_refund_details_response,
    "GetCaptureDetailsResponse.xml": parse.parse_get_capture_details_response,
    "GetCaptureDetailsResponse_Multicurrency.xml": parse.parse_get_capture_details_response,
    "GetServiceStatusResponseGreen.xml": parse.parse_service_status_response,
    "ErrorResponse.xml": lambda body: parse.parse_error_response(body, 400),
    "ThrottledErrorResponse.xml": lambda body: parse.parse_error_response(body, 503),
}


def _body(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "mws" / name).read_bytes()


def _ipn_notification_data(fixtures_dir: Path, name: str) -> str:
    envelope = json.loads((fixtures_dir / "sns" / name).read_text())
    return str(json.loads(envelope["Message"])["NotificationData"])


def test_every_mws_xml_fixture_has_a_parser_and_parses(fixtures_dir: Path) -> None:
    names = sorted(path.name for path in (fixtures_dir / "mws").glob("*.xml"))
    assert names, "no MWS fixtures found"
    assert set(names) == set(PARSER_OF_FIXTURE), "a fixture without a test, or a test without its fixture"
    for name in names:
        assert PARSER_OF_FIXTURE[name](_body(fixtures_dir, name)) is not None


def test_refund_response_gives_every_refund_detail(fixtures_dir: Path) -> None:
    details = parse.parse_refund_response(_body(fixtures_dir, "RefundResponse.xml"))
    assert details.amazon_refund_id == "S01-5695290-1354077-R072290"
    assert details.refund_reference_id == "testRefundId1354077"
    assert details.refund_type == "SellerInitiated"
    assert details.refund_amount == Price(Decimal("0.50"), "USD")
    assert details.fee_refunded == Price(Decimal("0.00"), "USD")
    assert details.creation_timestamp == datetime(2015, 11, 2, 21, 18, 17, 751000, tzinfo=UTC)
    assert details.refund_status == AmazonRefundStatus(
        state="Pending",
        last_update_timestamp=datetime(2015, 11, 2, 21, 18, 17, 751000, tzinfo=UTC),
        reason_code=None,
        reason_description=None,
    )
    assert details.seller_refund_note == "testing"
    assert details.soft_descriptor == "AMZ*test"
    assert details.converted_amount is None
    assert details.conversion_rate is None
    assert details.request_id == "2be495ee-0a86-4357-a6a5-5f0af88398d9"


def test_get_refund_details_gives_the_completed_state_and_its_request_id(fixtures_dir: Path) -> None:
    details = parse.parse_get_refund_details_response(_body(fixtures_dir, "GetRefundDetails.xml"))
    assert details.amazon_refund_id == "S01-5695290-1354077-R072290"
    assert details.refund_reference_id == "testRefundId1354077"
    assert details.refund_amount == Price(Decimal("0.50"), "USD")
    assert details.refund_status.state == "Completed"
    assert details.refund_status.last_update_timestamp == datetime(
        2015, 11, 2, 21, 18, 48, 932000, tzinfo=UTC
    )
    assert details.creation_timestamp == datetime(2015, 11, 2, 21, 18, 17, 751000, tzinfo=UTC)
    assert details.request_id == "98cdadd5-8b44-4757-8e4f-351f39af7fcf"


def test_multicurrency_refund_details_give_converted_amount_and_rate(fixtures_dir: Path) -> None:
    details = parse.parse_get_refund_details_response(
        _body(fixtures_dir, "GetRefundDetails_Multicurrency.xml")
    )
    assert details.amazon_refund_id == "S02-8274313-3487267-R019346"
    assert details.refund_reference_id == "aed9ba8bee564c8cb943bd6481633ad1"
    assert details.refund_type == "SellerInitiated"
    assert details.refund_amount == Price(Decimal("0.33"), "NOK")
    assert details.fee_refunded == Price(Decimal("0.00"), "EUR")
    assert details.converted_amount == Price(Decimal("0.03"), "EUR")
    assert details.conversion_rate == Decimal("9.9248293483")
    assert details.seller_refund_note is None  # <SellerRefundNote/>
    assert details.soft_descriptor == "AMZ*Matt's Test Stor"
    assert details.creation_timestamp == datetime(2017, 6, 28, 18, 14, 34, 752000, tzinfo=UTC)
    assert details.refund_status == AmazonRefundStatus(
        "Completed", datetime(2017, 6, 28, 18, 15, 7, 659000, tzinfo=UTC), None, None
    )
    assert details.request_id == "3b14705b-0a11-4b05-98d3-eb62c9bf1d22"


def test_capture_details_give_amounts_status_and_an_empty_id_list(fixtures_dir: Path) -> None:
    details = parse.parse_get_capture_details_response(_body(fixtures_dir, "GetCaptureDetailsResponse.xml"))
    assert details.amazon_capture_id == "S01-9821095-1837200-C041953"
    assert details.capture_reference_id == "asdcdsd5iiiii"
    assert details.capture_amount == Price(Decimal("1.00"), "USD")
    assert details.refunded_amount == Price(Decimal("0"), "USD")
    assert details.capture_fee == Price(Decimal("0.00"), "USD")
    assert details.capture_status == CaptureStatus(
        state="Completed",
        reason_code=None,
        last_update_timestamp=datetime(2015, 10, 30, 21, 2, 38, 608000, tzinfo=UTC),
    )
    assert details.id_list == ()
    assert details.creation_timestamp == datetime(2015, 10, 30, 21, 2, 38, 608000, tzinfo=UTC)
    assert details.seller_capture_note == "testing"
    assert details.soft_descriptor == "AMZ*testikiki"
    assert details.converted_amount is None
    assert details.conversion_rate is None
    assert details.request_id == "21acf393-d625-497e-b2c0-d1dc0b0d2bb6"


def test_multicurrency_capture_details_give_converted_amount_and_rate(fixtures_dir: Path) -> None:
    details = parse.parse_get_capture_details_response(
        _body(fixtures_dir, "GetCaptureDetailsResponse_Multicurrency.xml")
    )
    assert details.amazon_capture_id == "S02-7423235-4925359-C052508"
    assert details.capture_reference_id == "7a087b12a3cb4d0ba3cb4230aa953de4"
    assert details.capture_amount == Price(Decimal("0.99"), "CHF")
    assert details.refunded_amount == Price(Decimal("0"), "CHF")
    assert details.capture_fee == Price(Decimal("0.00"), "EUR")
    assert details.converted_amount == Price(Decimal("0.88"), "EUR")
    assert details.conversion_rate == Decimal("1.1297854087")
    assert details.capture_status == CaptureStatus(
        "Completed", None, datetime(2017, 6, 27, 22, 7, 18, 999000, tzinfo=UTC)
    )
    assert details.creation_timestamp == datetime(2017, 6, 27, 22, 7, 18, 931000, tzinfo=UTC)
    assert details.seller_capture_note is None
    assert details.soft_descriptor == "AMZ*Matt's Test Stor"
    assert details.id_list == ()
    assert details.request_id == "a17ee562-9a97-4b22-8487-20e8e7230639"


def test_service_status_green(fixtures_dir: Path) -> None:
    status = parse.parse_service_status_response(_body(fixtures_dir, "GetServiceStatusResponseGreen.xml"))
    assert status == ServiceStatus(
        status="GREEN",
        timestamp=datetime(2016, 11, 27, 2, 57, 30, 504000, tzinfo=UTC),
        message_id=None,
        messages=(),
        request_id="93437336-70dd-4359-b453-f13a90dccb99",
    )


def test_service_status_messages_are_kept_with_their_locale() -> None:
    body = b"""<GetServiceStatusResponse xmlns="x"><GetServiceStatusResult>
      <Status>YELLOW</Status><Timestamp>2020-01-01T00:00:00Z</Timestamp><MessageId>m-1</MessageId>
      <Messages><Message><Locale>en_US</Locale><Text>Degraded</Text></Message></Messages>
    </GetServiceStatusResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
    </GetServiceStatusResponse>"""
    status = parse.parse_service_status_response(body)
    assert status.status == "YELLOW"
    assert status.message_id == "m-1"
    assert [(m.locale, m.text) for m in status.messages] == [("en_US", "Degraded")]


def test_error_response_gives_type_code_message_and_request_id(fixtures_dir: Path) -> None:
    error = parse.parse_error_response(_body(fixtures_dir, "ErrorResponse.xml"), 400)
    assert error.code == "OrderReferenceNotModifiable"
    assert error.error_type == "Sender"
    assert error.message == (
        "OrderReference S01-5695290-1354077 is not in draft state and cannot be modified "
        "with the request submitted by you."
    )
    assert error.request_id == "6d4699b8-1238-4c09-b539-176e2c2f5462"
    assert error.http_status == 400
    assert error.retryable is False


def test_throttled_error_response_with_eu_request_id_spelling_and_empty_type(fixtures_dir: Path) -> None:
    error = parse.parse_error_response(_body(fixtures_dir, "ThrottledErrorResponse.xml"), 503)
    assert error.code == "RequestThrottled"
    assert error.message == "Request is throttled"
    assert error.error_type == ""
    assert error.request_id == "d702fd8e-206f-4da4-95e0-1e7422474077"
    assert error.http_status == 503
    assert error.retryable is True


def test_an_error_body_that_is_not_an_error_response_is_malformed_and_keeps_the_status() -> None:
    error = parse.parse_error_response(b"<html><body>Bad Gateway</body></html>", 502)
    assert (error.code, error.http_status, error.retryable) == ("MalformedResponse", 502, True)


def test_refund_details_inside_an_ipn_namespace_parse_like_the_api_ones(fixtures_dir: Path) -> None:
    details = parse.refund_details_from_xml(
        _ipn_notification_data(fixtures_dir, "amazon-pay-refund-completed-eu-2017.json")
    )
    assert details.amazon_refund_id == "S02-8274313-3487267-R019346"
    assert details.refund_reference_id == "aed9ba8bee564c8cb943bd6481633ad1"
    assert details.refund_amount == Price(Decimal("0.33"), "NOK")
    assert details.fee_refunded == Price(Decimal("0.0"), "NOK")
    assert details.converted_amount == Price(Decimal("0.03"), "EUR")
    assert details.conversion_rate == Decimal("9.9248293483")
    assert details.refund_status.state == "Completed"
    assert details.request_id is None


def test_capture_details_inside_an_ipn_namespace_parse_like_the_api_ones(fixtures_dir: Path) -> None:
    details = parse.capture_details_from_xml(
        _ipn_notification_data(fixtures_dir, "amazon-pay-capture-eu-2017.json")
    )
    assert details.amazon_capture_id == "S02-6112897-1842302-C042768"
    assert details.capture_reference_id == "KWUFWoFZ0WiZRrMKJ0g"
    assert details.capture_amount == Price(Decimal("19.95"), "GBP")
    assert details.converted_amount == Price(Decimal("21.84"), "EUR")
    assert details.conversion_rate == Decimal("0.913362644")
    assert details.capture_status.state == "Completed"
    assert details.creation_timestamp == datetime(2017, 6, 27, 22, 42, 56, 430000, tzinfo=UTC)


CAPTURE_WITH_IDS = """<CaptureNotification xmlns="https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01">
<CaptureDetails><AmazonCaptureId>C1</AmazonCaptureId><CaptureReferenceId>ref</CaptureReferenceId>
<CaptureAmount><Amount>10.00</Amount><CurrencyCode>USD</CurrencyCode></CaptureAmount>
<RefundedAmount><Amount>3.00</Amount><CurrencyCode>USD</CurrencyCode></RefundedAmount>
<IdList>{ids}</IdList><CreationTimestamp>2020-01-01T00:00:00Z</CreationTimestamp>
<CaptureStatus><State>Closed</State><ReasonCode>MaxAmountRefunded</ReasonCode></CaptureStatus>
</CaptureDetails></CaptureNotification>"""


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ("<member>R1</member>", ("R1",)),
        ("<member>R1</member><member>R2</member>", ("R1", "R2")),
        ("<Id>R1</Id>", ("R1",)),
        ("<Id>R1</Id><Id>R2</Id><Id>R3</Id>", ("R1", "R2", "R3")),
    ],
)
def test_id_list_accepts_member_or_id_children_one_or_many(ids: str, expected: tuple[str, ...]) -> None:
    details = parse.capture_details_from_xml(CAPTURE_WITH_IDS.format(ids=ids))
    assert details.id_list == expected


def test_capture_status_reason_code_is_kept() -> None:
    details = parse.capture_details_from_xml(CAPTURE_WITH_IDS.format(ids=""))
    assert details.capture_status.state == "Closed"
    assert details.capture_status.reason_code == "MaxAmountRefunded"
    assert details.capture_fee is None


def test_declined_refund_status_carries_reason_code_and_description() -> None:
    body = b"""<RefundResponse><RefundResult><RefundDetails>
      <AmazonRefundId>R1</AmazonRefundId><RefundReferenceId>ref_1</RefundReferenceId>
      <RefundType>SellerInitiated</RefundType>
      <RefundAmount><Amount>1000</Amount><CurrencyCode>JPY</CurrencyCode></RefundAmount>
      <CreationTimestamp>2020-01-01T00:00:00.000Z</CreationTimestamp>
      <RefundStatus><State>Declined</State><ReasonCode>ProcessingFailure</ReasonCode>
        <ReasonDescription>try again</ReasonDescription></RefundStatus>
    </RefundDetails></RefundResult></RefundResponse>"""
    details = parse.parse_refund_response(body)
    assert details.refund_status.reason_code == "ProcessingFailure"
    assert details.refund_status.reason_description == "try again"
    assert details.refund_amount == Price(Decimal("1000"), "JPY")
    assert details.fee_refunded is None
    assert details.request_id is None


DTD_BODY = b"""<?xml version="1.0"?>
<!DOCTYPE RefundResponse [<!ENTITY x "S01-1">]>
<RefundResponse><RefundResult><RefundDetails><AmazonRefundId>&x;</AmazonRefundId></RefundDetails>
</RefundResult></RefundResponse>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<ErrorResponse><Error><Code>&lol2;</Code></Error></ErrorResponse>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<RefundNotification><RefundDetails><AmazonRefundId>&xxe;</AmazonRefundId></RefundDetails>
</RefundNotification>"""


@pytest.mark.parametrize("body", [DTD_BODY, BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_a_response_with_a_dtd_or_entity_is_refused_as_malformed(body: bytes) -> None:
    with pytest.raises(AmazonPayError) as caught:
        parse.parse_refund_response(body)
    assert caught.value.code == "MalformedResponse"


@pytest.mark.parametrize("body", [DTD_BODY, BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_an_error_response_with_a_dtd_or_entity_is_not_believed(body: bytes) -> None:
    error = parse.parse_error_response(body, 400)
    assert error.code == "MalformedResponse"


@pytest.mark.parametrize("body", [DTD_BODY, BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_ipn_notification_data_with_a_dtd_or_entity_is_refused(body: bytes) -> None:
    with pytest.raises(parse.MalformedXml):
        parse.refund_details_from_xml(body.decode())


def test_a_doctype_without_entities_is_refused_too() -> None:
    with pytest.raises(parse.MalformedXml):
        parse.parse_xml(b'<?xml version="1.0"?><!DOCTYPE RefundResponse><RefundResponse/>')


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<RefundResponse><RefundResult>",
        b"<GetRefundDetailsResponse/>",  # well-formed, but the wrong response
        b"<RefundResponse><RefundResult/></RefundResponse>",
        b"<RefundResponse><RefundResult><RefundDetails><AmazonRefundId>R</AmazonRefundId>"
        b"</RefundDetails></RefundResult></RefundResponse>",
    ],
)
def test_unreadable_or_incomplete_refund_responses_are_malformed_and_retryable(body: bytes) -> None:
    with pytest.raises(AmazonPayError) as caught:
        parse.parse_refund_response(body)
    assert caught.value.code == "MalformedResponse"
    assert caught.value.retryable is True


def test_an_amount_that_is_not_a_number_is_malformed(fixtures_dir: Path) -> None:
    body = _body(fixtures_dir, "RefundResponse.xml").replace(
        b"<Amount>0.50</Amount>", b"<Amount>0,50</Amount>"
    )
    with pytest.raises(AmazonPayError) as caught:
        parse.parse_refund_response(body)
    assert caught.value.code == "MalformedResponse"


def test_refund_details_from_xml_without_refund_details_is_malformed() -> None:
    with pytest.raises(parse.MalformedXml):
        parse.refund_details_from_xml("<RefundNotification/>")


def test_naive_timestamps_are_taken_as_utc() -> None:
    assert parse.parse_timestamp("2020-01-01T00:00:00") == datetime(2020, 1, 1, tzinfo=UTC)
