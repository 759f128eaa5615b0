from __future__ import annotations

from decimal import Decimal

import pytest

from amazon_pay_refunds.money import (
    InvalidAmount,
    format_amount,
    over_refund_allowance,
    parse_amount,
    wire_amount,
)


@pytest.mark.parametrize(
    ("text", "currency", "value"),
    [("12.50", "USD", Decimal("12.50")), ("12.5", "EUR", Decimal("12.50")), ("1000", "JPY", Decimal("1000")),
     ("0.01", "GBP", Decimal("0.01")), ("7", "USD", Decimal("7.00"))],
)  # fmt: skip
def test_valid_amounts_parse_to_decimal_quantised_to_the_currency(
    text: str, currency: str, value: Decimal
) -> None:
    parsed = parse_amount(text, currency)
    assert parsed == value
    assert parsed.as_tuple().exponent == (0 if currency == "JPY" else -2)


@pytest.mark.parametrize(
    ("text", "currency"),
    [("12.505", "USD"), ("100.5", "JPY"), ("-1.00", "USD"), ("1e3", "USD"), ("0", "USD"), ("0.00", "EUR"),
     (" 1.00", "USD"), ("1,00", "EUR"), ("NaN", "USD"), ("Infinity", "USD"), ("01.00", "USD"), ("", "USD"),
     ("1.00", "XXX"), ("1.", "USD"), ("12.50\n", "USD"), ("1200\n", "JPY")],
)  # fmt: skip
def test_malformed_or_out_of_currency_amounts_are_refused(text: str, currency: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(text, currency)


def test_floats_are_refused_even_when_exact() -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(12.5, "USD")  # type: ignore[arg-type]


def test_format_amount_is_the_wire_form() -> None:
    assert format_amount(Decimal("12.5"), "USD") == "12.50"
    assert format_amount(Decimal("1000"), "JPY") == "1000"


@pytest.mark.parametrize(
    ("captured", "currency", "allowance"),
    [("100.00", "USD", "15.00"), ("1000.00", "USD", "75.00"), ("1000.00", "EUR", "75.00"),
     ("100000", "JPY", "8400"), ("1000", "JPY", "150"), ("1000.00", "NOK", "150.00")],
)  # fmt: skip
def test_over_refund_allowance_is_the_lesser_of_15_percent_and_the_absolute_cap(
    captured: str, currency: str, allowance: str
) -> None:
    assert over_refund_allowance(Decimal(captured), currency) == Decimal(allowance)


@pytest.mark.parametrize(("currency", "example"), [("USD", '"12.50"'), ("JPY", '"1200"')])
@pytest.mark.parametrize("text", ["-5.00", "1e3", "12.50\n", "1 000"])
def test_a_refused_amount_says_what_a_valid_one_looks_like(text: str, currency: str, example: str) -> None:
    with pytest.raises(InvalidAmount, match=example):
        parse_amount(text, currency)


def test_wire_amount_sends_exactly_the_amount_or_refuses() -> None:
    """Both Amazon clients (v1 and v2) send amounts through this one check."""
    assert wire_amount(Decimal("10.5"), "USD") == "10.50"
    assert wire_amount(Decimal("1000"), "JPY") == "1000"
    for amount, currency, message in [
        (Decimal("1.005"), "USD", "more than 2 decimals"),
        (Decimal("1.5"), "JPY", "more than 0 decimals"),
        (Decimal("0"), "USD", "greater than zero"),
        (Decimal("NaN"), "USD", "finite Decimal"),
        (1.5, "USD", "finite Decimal"),
    ]:
        with pytest.raises(ValueError, match=message):
            wire_amount(amount, currency)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        wire_amount(Decimal("1"), "XXX")
