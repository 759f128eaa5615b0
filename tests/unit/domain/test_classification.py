"""domain/classification.py: a refund Amazon reports is ours only when it is an attempt of the refund its
reference id names; everything else is external, however much its reference id looks like ours."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from amazon_pay_refunds.core.classification import (
    REASON_A_TO_Z,
    REASON_CHARGEBACK,
    Ours,
    ReportedRefund,
    classify,
    counts_against_capture,
    forbids_retry,
    named_refund_id,
)
from amazon_pay_refunds.core.lifecycle import (
    PROCESSING_FAILURE,
    AttemptAccepted,
    AttemptOutcome,
    NewAttemptStarted,
)
from amazon_pay_refunds.core.models import AttemptState, Refund
from tests.support.domain import CAPTURE_ID, drive, new_refund

AMAZON_ID_1 = "S01-1234567-1234567-R000001"
AMAZON_ID_2 = "S01-1234567-1234567-R000002"


def report(
    reference: str = "ord-1001-r1_1", amazon_refund_id: str = AMAZON_ID_1, **changes: object
) -> ReportedRefund:
    base = ReportedRefund(
        amazon_refund_id=amazon_refund_id,
        refund_reference_id=reference,
        amount=Decimal("12.50"),
        currency_code="USD",
        refund_type="SellerInitiated",
        state="Pending",
        amazon_capture_id=CAPTURE_ID,
        seller_id="A1EXAMPLE",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def retried() -> Refund:
    """Attempt 1 (AMAZON_ID_1) declined with ProcessingFailure; attempt 2 prepared, not answered yet."""
    return drive(
        new_refund(),
        AttemptAccepted(1, AMAZON_ID_1),
        AttemptOutcome(AttemptState.DECLINED, "ipn:n1", PROCESSING_FAILURE, AMAZON_ID_1),
        NewAttemptStarted(2),
    )


def test_an_attempt_of_the_named_refund_is_ours() -> None:
    assert classify(report(), new_refund()) == Ours("ord-1001-r1", 1)  # its answer not recorded yet
    assert classify(report(), drive(new_refund(), AttemptAccepted(1, AMAZON_ID_1))) == Ours("ord-1001-r1", 1)
    assert classify(report("ord-1001-r1_2", AMAZON_ID_2), retried()) == Ours("ord-1001-r1", 2)


def test_a_reference_naming_an_attempt_that_does_not_exist_is_external() -> None:
    assert classify(report("ord-1001-r1_7", AMAZON_ID_2), new_refund()) is None
    assert classify(report("ord-1001-r1_2", AMAZON_ID_2), new_refund()) is None  # no retry yet


def test_another_amazon_refund_under_an_attempts_reference_is_external() -> None:
    answered = drive(new_refund(), AttemptAccepted(1, AMAZON_ID_1))
    assert classify(report(amazon_refund_id=AMAZON_ID_2), answered) is None


def test_another_amount_currency_capture_or_seller_is_external() -> None:
    refund = new_refund()
    assert classify(report(amount=Decimal("15.00")), refund) is None
    assert classify(report(currency_code="EUR"), refund) is None
    assert classify(report(amazon_capture_id="S01-7654321-7654321-C000009"), refund) is None
    assert classify(report(seller_id="A2OTHER"), refund) is None


def test_what_a_report_does_not_say_is_not_held_against_it() -> None:
    assert classify(report(amazon_capture_id=None, seller_id=None), new_refund()) == Ours("ord-1001-r1", 1)


def test_without_the_named_refund_or_with_another_one_everything_is_external() -> None:
    assert classify(report(), None) is None
    assert classify(report("ERP-4711"), new_refund()) is None
    assert classify(report("ord-1001-r2_1"), new_refund()) is None  # names another refund than given


def test_only_a_to_z_and_chargeback_refunds_forbid_a_retry() -> None:
    assert forbids_retry("AmazonA-ZRefund") == REASON_A_TO_Z
    assert forbids_retry("Chargeback") == forbids_retry("AmazonChargebackRefund") == REASON_CHARGEBACK
    assert forbids_retry("SellerInitiated") is forbids_retry("BuyerCanceled") is forbids_retry(None) is None


def test_declined_refunds_take_nothing_from_the_capture() -> None:
    assert counts_against_capture("Pending") and counts_against_capture("Completed")
    assert not counts_against_capture("Declined")


references = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9_-]{1,32}\Z"),
    st.builds(lambda n: f"ord-1001-r1_{n}", st.integers(min_value=0, max_value=1200)),
    st.builds(lambda n: f"ord-1001-r1_0{n}", st.integers(min_value=1, max_value=99)),
)
amounts = st.sampled_from([Decimal("12.50"), Decimal("12.49"), Decimal("15.00")])
amazon_ids = st.sampled_from([AMAZON_ID_1, AMAZON_ID_2])
refunds = st.sampled_from(["new", "answered", "retried"])


@given(references, amounts, amazon_ids, refunds)
def test_ours_exactly_when_every_part_matches_an_existing_attempt(
    reference: str, amount: Decimal, amazon_id: str, which: str
) -> None:
    refund = {
        "new": new_refund(),
        "answered": drive(new_refund(), AttemptAccepted(1, AMAZON_ID_1)),
        "retried": retried(),
    }[which]
    verdict = classify(report(reference, amazon_id, amount=amount), refund)
    matching = [
        a
        for a in refund.attempts
        if a.refund_reference_id == reference and a.amazon_refund_id in (None, amazon_id)
    ]
    expected = Ours(refund.refund_id, matching[0].attempt) if matching and amount == refund.amount else None
    assert verdict == expected
    if verdict is not None:
        assert named_refund_id(reference) == refund.refund_id
        assert refund.attempt(verdict.attempt) is not None
