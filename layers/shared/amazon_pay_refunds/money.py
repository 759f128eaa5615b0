"""Money as Decimal, parsed from strings and checked against the currency's minor units."""

from __future__ import annotations

import re
from decimal import Decimal

# Currencies Amazon Pay v1 settles or presents (multi-currency); JPY has no minor unit.
MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "JPY": 0,
    "AUD": 2, "CHF": 2, "DKK": 2, "HKD": 2, "NOK": 2, "NZD": 2, "SEK": 2, "ZAR": 2,
}  # fmt: skip

# Amazon's over-refund allowance: min(15 %, this absolute amount); only these currencies have one.
OVER_REFUND_ABSOLUTE: dict[str, Decimal] = {
    "USD": Decimal("75"), "GBP": Decimal("75"), "EUR": Decimal("75"), "JPY": Decimal("8400"),
}  # fmt: skip
OVER_REFUND_RATIO = Decimal("0.15")

_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,12})(\.[0-9]+)?$")


class InvalidAmount(ValueError):
    """An amount string that is not a positive decimal valid for its currency."""


def minor_units(currency_code: str) -> int:
    try:
        return MINOR_UNITS[currency_code]
    except KeyError:
        raise InvalidAmount(f"unsupported currency {currency_code!r}") from None


def parse_amount(text: str, currency_code: str, *, allow_zero: bool = False) -> Decimal:
    """Parse a decimal string such as "12.50"; refuse floats, exponents, signs and excess decimals."""
    if not isinstance(text, str):
        raise InvalidAmount("amount must be a decimal string")
    places = minor_units(currency_code)
    match = _AMOUNT.match(text)
    if not match:
        raise InvalidAmount(f"{text!r} is not a decimal amount")
    fraction = match.group(2)
    if fraction is not None and len(fraction) - 1 > places:
        if places == 0:
            raise InvalidAmount(f"{currency_code} amounts have no decimals")
        raise InvalidAmount(f"{currency_code} amounts have at most {places} decimals")
    value = Decimal(text)
    if value == 0 and not allow_zero:
        raise InvalidAmount("amount must be greater than zero")
    return quantize(value, currency_code)


def parse_reported_amount(text: str) -> Decimal:
    """An amount as Amazon reports it (trusted format, any currency, possibly more decimals)."""
    return Decimal(text.strip())


def quantize(value: Decimal, currency_code: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-minor_units(currency_code)))


def format_amount(value: Decimal, currency_code: str) -> str:
    """The wire form: "12.50", "1000" for JPY."""
    return f"{quantize(value, currency_code):f}"


def over_refund_allowance(captured: Decimal, currency_code: str) -> Decimal:
    """How far Amazon lets refunds exceed the capture: min(15 %, 75 USD/GBP/EUR or 8,400 JPY)."""
    ratio = captured * OVER_REFUND_RATIO
    absolute = OVER_REFUND_ABSOLUTE.get(currency_code)
    allowance = ratio if absolute is None else min(ratio, absolute)
    return allowance.quantize(Decimal(1).scaleb(-minor_units(currency_code)), rounding="ROUND_DOWN")
