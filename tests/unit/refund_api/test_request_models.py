"""POST /refunds and resolve bodies: what the API accepts and refuses before any work is done."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from amazon_pay_refunds.api.models import (
    CurrencyCode,
    RefundRequestBody,
    ResolveRequestBody,
    to_refund_request,
)
from amazon_pay_refunds.money import MINOR_UNITS

VALID: dict[str, Any] = {
    "refund_id": "ord-1001-r1",
    "amazon_capture_id": "S01-1234567-1234567-C000001",
    "amount": "12.50",
    "currency_code": "USD",
}


def refused_fields(**changes: Any) -> set[str]:
    with pytest.raises(ValidationError) as error:
        RefundRequestBody.model_validate({**VALID, **changes})
    return {str(e["loc"][0]) for e in error.value.errors()}


def test_accepted_currencies_are_exactly_those_with_known_minor_units() -> None:
    assert set(get_args(CurrencyCode)) == set(MINOR_UNITS)


@pytest.mark.parametrize(
    "capture_id",
    ["S01-9821095-1837200-C041953", "S02-6112897-1842302-C042768", "P01-1234567-1234567-C000001"],
)
def test_amazons_capture_ids_are_accepted(capture_id: str) -> None:
    assert RefundRequestBody.model_validate({**VALID, "amazon_capture_id": capture_id})


def test_jpy_amount_is_whole_yen() -> None:
    body = RefundRequestBody.model_validate({**VALID, "amount": "1200", "currency_code": "JPY"})
    assert to_refund_request(body).amount == Decimal("1200")
    assert refused_fields(amount="1200.0", currency_code="JPY") == {"amount"}


def test_usd_amount_is_quantised_to_cents() -> None:
    body = RefundRequestBody.model_validate({**VALID, "amount": "12.5"})
    assert str(to_refund_request(body).amount) == "12.50"


@pytest.mark.parametrize("amount", [12.5, 12, "12.505", "0", "-1", "1e2", " 12.50", "12,50"])
def test_amount_that_is_not_a_positive_decimal_string_for_the_currency_is_refused(amount: object) -> None:
    assert refused_fields(amount=amount) == {"amount"}


def test_refund_id_with_an_underscore_is_refused_as_it_would_collide_with_reference_ids() -> None:
    assert refused_fields(refund_id="ord_1") == {"refund_id"}


def test_refund_id_format_is_documented_in_the_schema() -> None:
    field = RefundRequestBody.model_json_schema()["properties"]["refund_id"]
    assert "no underscore" in field["description"]
    assert field["pattern"] == "^[A-Za-z0-9-]{1,28}$"


def test_unknown_fields_are_refused() -> None:
    assert refused_fields(reason="x") == {"reason"}


def test_metadata_must_be_a_small_flat_object_of_strings() -> None:
    assert refused_fields(metadata={"a": 1}) == {"metadata"}
    assert refused_fields(metadata={f"k{i}": "v" for i in range(21)}) == {"metadata"}
    assert refused_fields(metadata={"k": "v" * 257}) == {"metadata"}


def test_resolution_method_is_one_of_the_known_ways() -> None:
    assert ResolveRequestBody.model_validate({"method": "bank_transfer", "note": "sent"})
    with pytest.raises(ValidationError):
        ResolveRequestBody.model_validate({"method": "cash", "note": "sent"})
