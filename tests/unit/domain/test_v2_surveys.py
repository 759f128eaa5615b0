"""A survey of a v2 charge reads again the refunds its ledger still knows as pending (Get Refund) before
Get Charge's refundedAmount is explained, so each refund by others is counted once and the headroom is
right before a Create Refund or a retry (issue 14)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from amazon_pay_refunds.adapters.mws.models import AmazonRefundStatus, CaptureDetails, Price, RefundDetails
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import AttemptAccepted, PermanentlyRefused, apply_observation
from amazon_pay_refunds.core.models import AttemptState, PaymentApi, RefundStatus, qualified_id
from amazon_pay_refunds.use_cases.capture_refunds import survey_capture
from tests.support.domain import new_refund
from tests.support.doubles import (
    CAPTURE_ID,
    NOW,
    MemoryStore,
    ScriptedAmazonPay,
    capture_details,
    refund_details,
)

CHARGE = qualified_id(PaymentApi.V2, CAPTURE_ID)
THEIRS = "S01-1234567-1234567-R000009"
OURS = "S01-1234567-1234567-R000001"


def charge(refunded: str) -> CaptureDetails:
    return replace(
        capture_details("100.00"), amazon_capture_id=CHARGE, refunded_amount=Price(Decimal(refunded), "USD")
    )


def read(amazon_refund_id: str, state: str, amount: str) -> RefundDetails:
    details = refund_details(amazon_refund_id, state)
    return replace(
        details,
        refund_amount=Price(Decimal(amount), "USD"),
        refund_status=AmazonRefundStatus(state, NOW, None, None),
        amazon_capture_id=CHARGE,
    )


def store_with_pending_by_others() -> MemoryStore:
    store = MemoryStore()
    ours = replace(new_refund("r1", "10.00"), api=PaymentApi.V2)
    store.create_refund_with_reservation(ours, LedgerSeed(CHARGE, ours.seller_id, "USD", Decimal("100.00")))
    store.record_external_refund(CHARGE, THEIRS, Decimal("30.00"), "USD", "Untyped", at=NOW, state="Pending")
    return store


def test_a_pending_refund_by_others_that_settled_is_completed_by_id_not_recorded_again() -> None:
    store = store_with_pending_by_others()
    amazon = ScriptedAmazonPay(refund_details_answers={f"v2:{THEIRS}": read(THEIRS, "Completed", "30.00")})

    survey = survey_capture(store, amazon, charge("30.00"), "A1EXAMPLE", deadline=0.0, now=lambda: NOW)

    assert survey.known is not None
    assert [(e.amazon_refund_id, e.state) for e in survey.known.externals] == [(THEIRS, "Completed")]
    assert survey.known.available == Decimal("60.00")  # 100 - 10 ours - 30 theirs, once


def test_a_pending_refund_by_others_that_amazon_declined_is_released_but_still_forbids_the_retry() -> None:
    store = store_with_pending_by_others()
    amazon = ScriptedAmazonPay(refund_details_answers={f"v2:{THEIRS}": read(THEIRS, "Declined", "30.00")})

    survey = survey_capture(store, amazon, charge("0.00"), "A1EXAMPLE", deadline=0.0, now=lambda: NOW)

    assert survey.known is not None
    assert [(e.amazon_refund_id, e.state) for e in survey.known.externals] == [(THEIRS, "Declined")]
    assert survey.known.available == Decimal("90.00")  # 100 - 10 ours: nothing of theirs moved
    assert survey.retry_forbidden == f"Untyped external refund found: {THEIRS}"


def test_our_pending_refund_that_amazon_refunded_is_applied_not_taken_for_someone_elses() -> None:
    store = MemoryStore()
    ours = replace(new_refund("r1", "10.00"), api=PaymentApi.V2)
    store.create_refund_with_reservation(ours, LedgerSeed(CHARGE, ours.seller_id, "USD", Decimal("100.00")))
    store.transition(
        "r1", lambda r: apply_observation(r, AttemptAccepted(1, OURS, AttemptState.PENDING), at=NOW)
    )
    amazon = ScriptedAmazonPay(refund_details_answers={f"v2:{OURS}": read(OURS, "Completed", "10.00")})

    survey = survey_capture(store, amazon, charge("10.00"), "A1EXAMPLE", deadline=0.0, now=lambda: NOW)

    stored = store.get_refund("r1")
    assert stored is not None and stored.status is RefundStatus.COMPLETED
    assert survey.known is not None and survey.known.externals == ()
    assert survey.known.available == Decimal("90.00")


def test_a_remainder_of_a_refunded_total_already_partly_explained_is_counted() -> None:
    """30.00 refunded by others was read while our 10.00 attempt was sent but unanswered (20.00 recorded);
    the attempt was then refused (never made, released): the next survey counts the other 10.00."""
    store = MemoryStore()
    ours = replace(new_refund("r1", "10.00"), api=PaymentApi.V2)
    store.create_refund_with_reservation(ours, LedgerSeed(CHARGE, ours.seller_id, "USD", Decimal("100.00")))
    store.record_external_refund(
        CHARGE, "v2-refunded-30.00", Decimal("20.00"), "USD", "Untyped", at=NOW, state="Completed"
    )
    store.transition(
        "r1", lambda r: apply_observation(r, PermanentlyRefused(1, "InvalidChargeStatus"), at=NOW)
    )

    survey = survey_capture(
        store, ScriptedAmazonPay(), charge("30.00"), "A1EXAMPLE", deadline=0.0, now=lambda: NOW
    )

    assert survey.known is not None and survey.known.available == Decimal("70.00")
