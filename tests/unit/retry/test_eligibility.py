"""Amazon's rule for retrying a ProcessingFailure: capture still Completed, no A-to-z or chargeback refund."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from amazon_pay_refunds.core.retry_eligibility import Eligibility, assess_eligibility
from amazon_pay_refunds.use_cases.retries import REASON_A_TO_Z, REASON_CHARGEBACK

OTHER_TYPES = st.lists(st.sampled_from(["SellerInitiated", "BuyerCanceled"]), max_size=9)


def test_a_completed_capture_with_only_seller_refunds_is_eligible() -> None:
    assert assess_eligibility("Completed", ["SellerInitiated"]) == Eligibility(True)


def test_an_a_to_z_guarantee_refund_on_the_capture_makes_the_retry_ineligible() -> None:
    assert assess_eligibility("Completed", ["SellerInitiated", "AmazonA-ZRefund"]) == Eligibility(
        False, REASON_A_TO_Z
    )


def test_a_chargeback_refund_on_the_capture_makes_the_retry_ineligible() -> None:
    assert assess_eligibility("Completed", ["Chargeback"]) == Eligibility(False, REASON_CHARGEBACK)


def test_a_closed_capture_makes_the_retry_ineligible_naming_its_state() -> None:
    assert assess_eligibility("Closed", []) == Eligibility(False, "Capture Closed")


@given(OTHER_TYPES, st.sampled_from(["Completed", "Closed", "Pending", "Declined"]), st.data())
def test_an_a_to_z_refund_anywhere_among_the_refunds_always_blocks_the_retry(
    types: list[str], state: str, data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, len(types)))
    with_claim = [*types[:position], "AmazonA-ZRefund", *types[position:]]
    assert assess_eligibility(state, with_claim) == Eligibility(False, REASON_A_TO_Z)


@given(OTHER_TYPES, st.sampled_from(["Closed", "Pending", "Declined"]))
def test_only_a_completed_capture_is_ever_retried(types: list[str], state: str) -> None:
    assert assess_eligibility(state, types) == Eligibility(False, f"Capture {state}")
    assert assess_eligibility("Completed", types).eligible
