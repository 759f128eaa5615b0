"""Malformed MWS answers: every parse path turns them into its one documented failure, never anything else.

A response parser raises only `AmazonPayError(MalformedResponse)` (the client then treats the call's outcome
as unknown); `parse_error_response` never raises; the NotificationData parsers raise only `MalformedXml`.
Anything else (a bare ValueError, LookupError, RecursionError...) would escape the client and answer 500.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amazon_pay_refunds.adapters.mws.errors import MALFORMED_RESPONSE, AmazonPayError
from amazon_pay_refunds.adapters.mws.parse import (
    MalformedXml,
    capture_details_from_xml,
    parse_error_response,
    parse_get_capture_details_response,
    parse_get_refund_details_response,
    parse_refund_response,
    parse_service_status_response,
    refund_details_from_xml,
)
from tests.support.paths import FIXTURES

MWS = FIXTURES / "mws"
RESPONSE_PARSERS: dict[str, tuple[Callable[[bytes], Any], str]] = {
    "Refund": (parse_refund_response, "RefundResponse.xml"),
    "GetRefundDetails": (parse_get_refund_details_response, "GetRefundDetails.xml"),
    "GetCaptureDetails": (parse_get_capture_details_response, "GetCaptureDetailsResponse.xml"),
    "GetServiceStatus": (parse_service_status_response, "GetServiceStatusResponseGreen.xml"),
}
NOTIFICATION_PARSERS: dict[str, tuple[Callable[[bytes], Any], str]] = {
    "RefundDetails": (refund_details_from_xml, "GetRefundDetails.xml"),
    "CaptureDetails": (capture_details_from_xml, "GetCaptureDetailsResponse.xml"),
}


def fixture(name: str) -> bytes:
    return (MWS / name).read_bytes()


def redeclared(body: bytes, encoding: str) -> bytes:
    """The same document, its XML declaration naming another encoding (the bytes unchanged)."""
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
    if body.startswith(b"<?xml"):
        return declaration + body[body.index(b"?>") + 2 :]
    return declaration + body


def check_response_parser(parse: Callable[[bytes], Any], body: bytes) -> None:
    try:
        parse(body)
    except AmazonPayError as error:
        assert error.code == MALFORMED_RESPONSE


def check_notification_parser(parse: Callable[[bytes], Any], body: bytes) -> None:
    with contextlib.suppress(MalformedXml):
        parse(body)


# Declared encodings Python's expat refuses in different ways: multi-byte (ValueError), unknown (LookupError),
# and ones whose decoding of these bytes fails.
HOSTILE_ENCODINGS = [
    "UTF-7",
    "utf-7",
    "UTF-16",
    "UTF-32",
    "x-no-such-encoding",
    "",
    "ebcdic-cp-us",
    "cp1252 ",
]


@pytest.mark.parametrize("encoding", HOSTILE_ENCODINGS)
@pytest.mark.parametrize("operation", sorted(RESPONSE_PARSERS))
def test_a_response_declaring_an_unreadable_encoding_is_a_malformed_response(
    operation: str, encoding: str
) -> None:
    parse, name = RESPONSE_PARSERS[operation]

    with pytest.raises(AmazonPayError) as raised:
        parse(redeclared(fixture(name), encoding))

    assert raised.value.code == MALFORMED_RESPONSE


@pytest.mark.parametrize("encoding", HOSTILE_ENCODINGS)
def test_an_error_response_declaring_an_unreadable_encoding_is_still_an_error(encoding: str) -> None:
    error = parse_error_response(redeclared(fixture("ErrorResponse.xml"), encoding), 400)

    assert (error.code, error.http_status, error.retryable) == (MALFORMED_RESPONSE, 400, False)


@pytest.mark.parametrize("encoding", HOSTILE_ENCODINGS)
@pytest.mark.parametrize("kind", sorted(NOTIFICATION_PARSERS))
def test_notification_data_declaring_an_unreadable_encoding_is_malformed_xml(
    kind: str, encoding: str
) -> None:
    parse, name = NOTIFICATION_PARSERS[kind]

    with pytest.raises(MalformedXml):
        parse(redeclared(fixture(name), encoding))


MALFORMED_BODIES = [
    b"",
    b"\x00" * 16,
    b"\xef\xbb\xbf",  # a BOM and nothing else
    b"\xff\xfe<\x00a\x00/\x00>\x00",  # UTF-16 bytes behind a UTF-16 BOM: a document, but not Amazon's
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b"<" * 5000,
    b"<a>" * 50_000 + b"</a>" * 50_000,  # deep nesting
    b"<a>&#xD800;</a>",  # a character reference to a lone surrogate
    b"<a>&#0;</a>",
    b"<a>\xc3\x28</a>",  # invalid UTF-8
    b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
    b"<a xmlns:p='urn:x'><p:b/></a>",
    b"<html><body>502 Bad Gateway</body></html>",
]


@pytest.mark.parametrize("body", MALFORMED_BODIES, ids=range(len(MALFORMED_BODIES)))
def test_every_parse_path_turns_a_malformed_body_into_its_documented_failure(body: bytes) -> None:
    for parse, _ in RESPONSE_PARSERS.values():
        check_response_parser(parse, body)
    for parse, _ in NOTIFICATION_PARSERS.values():
        check_notification_parser(parse, body)
    assert isinstance(parse_error_response(body, 500), AmazonPayError)


# Values put into a real response's elements: numbers, times and texts no well-behaved Amazon sends.
HOSTILE_VALUES = [
    "",
    " ",
    "NaN",
    "-Infinity",
    "sNaN",
    "1e999999999",
    "1E-999999999",
    "9" * 5000,
    "12.50\n",
    "\u0663.\u0665\u0660",  # Arabic-Indic digits
    "0x10",
    "2024-13-45T99:99:99Z",
    "+275760-09-13T00:00:00Z",
    "yesterday",
    "\u202e12.50",
]
_ELEMENT_TEXT = re.compile(rb"(<(?P<name>[A-Za-z]+)>)[^<]+(</(?P=name)>)")


def with_every_value_replaced(body: bytes, value: str) -> bytes:
    encoded = value.encode("utf-8").replace(b"&", b"&amp;").replace(b"<", b"&lt;")
    return _ELEMENT_TEXT.sub(lambda m: m.group(1) + encoded + m.group(3), body)


def with_one_value_replaced(body: bytes, index: int, value: str) -> bytes:
    matches = list(_ELEMENT_TEXT.finditer(body))
    match = matches[index % len(matches)]
    encoded = value.encode("utf-8").replace(b"&", b"&amp;").replace(b"<", b"&lt;")
    return body[: match.start()] + match.group(1) + encoded + match.group(3) + body[match.end() :]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
@pytest.mark.parametrize("operation", sorted(RESPONSE_PARSERS))
def test_hostile_element_values_are_parsed_or_malformed(operation: str, value: str) -> None:
    parse, name = RESPONSE_PARSERS[operation]
    body = fixture(name)
    for index in range(len(_ELEMENT_TEXT.findall(body))):
        check_response_parser(parse, with_one_value_replaced(body, index, value))
    check_response_parser(parse, with_every_value_replaced(body, value))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operation=st.sampled_from(sorted(RESPONSE_PARSERS)),
    index=st.integers(min_value=0, max_value=200),
    value=st.text(max_size=40),
    encoding=st.sampled_from([None, "UTF-8", "UTF-7", "utf-16", "latin-1", "ascii", "nonsense"]),
)
def test_property_a_real_response_with_one_value_changed_is_parsed_or_malformed(
    operation: str, index: int, value: str, encoding: str | None
) -> None:
    parse, name = RESPONSE_PARSERS[operation]
    body = with_one_value_replaced(fixture(name), index, value)
    if encoding is not None:
        body = redeclared(body, encoding)
    check_response_parser(parse, body)
    for notification_parse, _ in NOTIFICATION_PARSERS.values():
        check_notification_parser(notification_parse, body)
    assert isinstance(parse_error_response(body, 200), AmazonPayError)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_property_arbitrary_bytes_are_parsed_or_malformed(body: bytes) -> None:
    for parse, _ in RESPONSE_PARSERS.values():
        check_response_parser(parse, body)
    for parse, _ in NOTIFICATION_PARSERS.values():
        check_notification_parser(parse, body)
    assert isinstance(parse_error_response(body, 503), AmazonPayError)


def test_the_fixtures_themselves_parse() -> None:
    """The control: the unchanged fixtures parse, so each case above fails for its own change."""
    for parse, name in RESPONSE_PARSERS.values():
        assert parse(fixture(name)) is not None
    for parse, name in NOTIFICATION_PARSERS.values():
        assert parse(fixture(name)) is not None
    assert Path(MWS / "ErrorResponse.xml").is_file()


@pytest.mark.parametrize(
    "amount", ["1e999999999", "1E+2", "9" * 39, "0." + "1" * 38, "12,50", "Infinity", "1_000", "+-1"]
)
@pytest.mark.parametrize("operation", ["Refund", "GetRefundDetails", "GetCaptureDetails"])
def test_an_amount_that_is_no_plain_decimal_a_store_can_hold_is_malformed(
    operation: str, amount: str
) -> None:
    """Decimal reads `1e999999999`; DynamoDB cannot store it (Overflow) and no amount of Amazon's looks so."""
    parse, name = RESPONSE_PARSERS[operation]
    body = re.sub(rb"<Amount>[^<]*</Amount>", f"<Amount>{amount}</Amount>".encode(), fixture(name), count=1)

    with pytest.raises(AmazonPayError) as raised:
        parse(body)

    assert raised.value.code == MALFORMED_RESPONSE


@pytest.mark.parametrize(
    "amount", ["0", "1000", "12.50", "0.0897", "-1.00", "12345678901234567890.1234567890"]
)
def test_plain_amounts_are_read_exactly(amount: str) -> None:
    body = re.sub(
        rb"(<RefundAmount>.*?<Amount>)[^<]*(</Amount>)",
        lambda m: m.group(1) + amount.encode() + m.group(2),
        fixture("RefundResponse.xml"),
        count=1,
        flags=re.DOTALL,
    )

    assert str(parse_refund_response(body).refund_amount.amount) == amount
