from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amazon_pay_refunds.core.references import (
    MAX_ATTEMPT,
    InvalidRefundId,
    parse_refund_reference_id,
    refund_reference_id,
)

AMAZON_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
refund_ids = st.from_regex(r"\A[A-Za-z0-9-]{1,28}\Z")
attempts = st.integers(min_value=1, max_value=MAX_ATTEMPT)


def test_attempt_reference_is_refund_id_underscore_attempt() -> None:
    assert refund_reference_id("ord-1001-r1", 2) == "ord-1001-r1_2"


def test_parse_returns_refund_id_and_attempt() -> None:
    assert parse_refund_reference_id("ord-1001-r1_12") == ("ord-1001-r1", 12)


@pytest.mark.parametrize(
    "reference",
    [
        "seller-central-refund",
        "ord_0",
        "ord_01",
        "ord_1000",
        "a_b_1",
        "_1",
        "ord_",
        "x" * 29 + "_1",
        "ord_1 ",
    ],
)
def test_parse_returns_none_for_references_this_service_did_not_make(reference: str) -> None:
    assert parse_refund_reference_id(reference) is None


@pytest.mark.parametrize("refund_id", ["", "has_underscore", "has space", "x" * 29, "ümlaut"])
def test_refund_id_outside_the_documented_format_is_refused(refund_id: str) -> None:
    with pytest.raises(InvalidRefundId):
        refund_reference_id(refund_id, 1)


@pytest.mark.parametrize("attempt", [0, -1, MAX_ATTEMPT + 1, True])
def test_attempt_outside_1_to_999_is_refused(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        refund_reference_id("ord-1", attempt)


@given(refund_ids, attempts)
def test_reference_fits_amazons_alphabet_and_length(refund_id: str, attempt: int) -> None:
    reference = refund_reference_id(refund_id, attempt)
    assert AMAZON_ALPHABET.match(reference)
    assert len(reference) <= 32


@given(refund_ids, attempts)
def test_parse_inverts_derivation(refund_id: str, attempt: int) -> None:
    assert parse_refund_reference_id(refund_reference_id(refund_id, attempt)) == (refund_id, attempt)


@given(refund_ids, attempts, refund_ids, attempts)
def test_distinct_refunds_or_attempts_never_share_a_reference(a: str, n: int, b: str, m: int) -> None:
    if (a, n) != (b, m):
        assert refund_reference_id(a, n) != refund_reference_id(b, m)
