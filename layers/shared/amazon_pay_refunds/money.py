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

# Matched against the whole string (fullmatch): with `match` and `$`, "12.50\n" would pass.
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,12})(\.[0-9]+)?")


class InvalidAmount(ValueError):
    """An amount string that is not a positive decimal valid for its currency."""


def minor_units(currency_code: str) -> int:
    try:
        return MINOR_UNITS[currency_code]
    except KeyError:
        raise InvalidAmount(f"unsupported currency {currency_code!r}") from None


def amount_example(currency_code: str) -> str:
    """A valid amount of the currency, for error messages: "12.50", or "1200" without minor units."""
    return "1200" if MINOR_UNITS.get(currency_code) == 0 else "12.50"


def parse_amount(text: str, currency_code: str, *, allow_zero: bool = False) -> Decimal:
    """Parse a decimal string such as "12.50"; refuse floats, exponents, signs and excess decimals.

    Every refusal says what a valid amount of the currency looks like.
    """
    places = minor_units(currency_code)
    example = amount_example(currency_code)
    if not isinstance(text, str):
        raise InvalidAmount(f'amount must be a decimal string such as "{example}", not a number')
    match = _AMOUNT.fullmatch(text)
    if not match:
        shape = "digits only" if places == 0 else f"digits, then optionally '.' and up to {places} decimals"
        raise InvalidAmount(
            f'{text[:40]!r} is not an amount: write a positive decimal string such as "{example}" '
            f"({shape}; no sign, exponent, spaces or thousands separators)"
        )
    fraction = match.group(2)
    if fraction is not None and len(fraction) - 1 > places:
        if places == 0:
            raise InvalidAmount(f'{currency_code} amounts have no decimals: write e.g. "{example}"')
        raise InvalidAmount(f'{currency_code} amounts have at most {places} decimals: write e.g. "{example}"')
    value = Decimal(text)
    if value == 0 and not allow_zero:
        raise InvalidAmount(f'amount must be greater than zero, such as "{example}"')
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


def wire_amount(amount: Decimal, currency_code: str, name: str = "amount") -> str:
    """`format_amount` for a request to Amazon, refusing what it would silently change: a float, more
    decimals than the currency has, zero or less. Raises ValueError (InvalidAmount for a currency)."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"{name} must be a finite Decimal")
    places = minor_units(currency_code)
    if amount <= 0:
        raise ValueError(f"{name} must be greater than zero")
    wire = format_amount(amount, currency_code)
    if Decimal(wire) != amount:
        raise ValueError(f"{name} has more than {places} decimals for {currency_code}")
    return wire
