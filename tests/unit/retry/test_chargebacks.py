"""API v2 chargebacks and the ProcessingFailure retry: a chargeback recorded on the charge's permission (a
CHARGEBACK IPN) forbids the retry at CheckEligibility and again right before the retry's Create Refund,
whatever the chargeback's state and even when no money moved (use_cases/capture_refunds.CaptureSurvey)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from amazon_pay_refunds.adapters.mws.models import Price
from amazon_pay_refunds.core.models import ExternalRefund, PaymentApi, RefundStatus
from amazon_pay_refunds.use_cases.capture_refunds import CaptureSurvey

from .doubles import (
    CAPTURE_ID,
    FIRST_AMAZON_ID,
    NOW,
    REFUND_ID,
    SELLER_ID,
    RetryAmazonPay,
    capture,
    steps,
    store_with_declined_refund,
)

PERMISSION = "S01-1234567-1234567"
CHARGEBACK = "S01-1234567-1234567-B000001"


def charge(permission: str = PERMISSION) -> RetryAmazonPay:
    """Amazon answering Get Charge with the charge's permission (as the v2 port maps it)."""
    return RetryAmazonPay(
        capture=replace(capture(id_list=[FIRST_AMAZON_ID]), charge_permission_id=permission)
    )


def test_a_chargeback_on_the_charges_permission_makes_the_retry_not_eligible() -> None:
    store, _ = store_with_declined_refund()
    store.record_chargeback(SELLER_ID, PERMISSION, CHARGEBACK, at=NOW)

    result = steps(store, charge()).check_eligibility(REFUND_ID, 1, deadline=99.0)

    assert (result["decision"], result["reason"]) == ("not_eligible", f"Chargeback found: {CHARGEBACK}")


def test_a_chargeback_on_another_permission_or_of_another_seller_does_not_count() -> None:
    store, _ = store_with_declined_refund()
    store.record_chargeback(SELLER_ID, "S01-7654321-7654321", "S01-7654321-7654321-B000001", at=NOW)
    store.record_chargeback("A2OTHERSELLER", PERMISSION, CHARGEBACK, at=NOW)

    result = steps(store, charge()).check_eligibility(REFUND_ID, 1, deadline=99.0)

    assert (result["decision"], result["reason"]) == ("eligible", None)


def test_a_chargeback_that_came_after_the_eligibility_check_stops_the_retry_before_it_is_sent() -> None:
    store, _ = store_with_declined_refund()
    amazon = charge()
    assert steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)["decision"] == "eligible"
    store.record_chargeback(SELLER_ID, PERMISSION, CHARGEBACK, at=NOW + timedelta(seconds=30))

    result = steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)

    assert ("Refund", f"{REFUND_ID}_2") not in amazon.calls
    refund = store.refunds[REFUND_ID]
    assert (refund.status, refund.reason_code) == (
        RefundStatus.MANUAL_ACTION_REQUIRED, f"Chargeback found: {CHARGEBACK}",
    )  # fmt: skip
    assert result["refund_status"] == "ManualActionRequired"


def test_a_ledger_that_did_not_know_its_permission_learns_it_from_get_charge() -> None:
    store, _ = store_with_declined_refund()
    assert store.ledgers[CAPTURE_ID].charge_permission_id is None  # opened before ledgers kept it

    steps(store, charge()).check_eligibility(REFUND_ID, 1, deadline=99.0)

    assert store.ledgers[CAPTURE_ID].charge_permission_id == PERMISSION


def test_the_reason_names_an_a_to_z_refund_first_then_a_chargeback_then_an_untyped_refund() -> None:
    from amazon_pay_refunds.core.models import Chargeback

    untyped = ExternalRefund("v2-refunded-5.00", Decimal("5.00"), "Untyped", NOW)
    a_to_z = ExternalRefund("S01-1234567-1234567-R000009", Decimal("5.00"), "AmazonA-ZRefund", NOW)
    survey = CaptureSurvey(capture(), None, (untyped,), chargebacks=(Chargeback(CHARGEBACK, NOW),))
    assert survey.retry_forbidden == f"Chargeback found: {CHARGEBACK}"
    assert replace(survey, externals=(untyped, a_to_z)).retry_forbidden == (
        "AmazonA-ZRefund found: S01-1234567-1234567-R000009"
    )
    assert (
        replace(survey, chargebacks=()).retry_forbidden == "Untyped external refund found: v2-refunded-5.00"
    )


def test_a_v2_refund_by_others_during_the_wait_stops_the_retry_before_it_is_sent() -> None:
    """Get Charge's refundedAmount grew by 10.00 after CheckEligibility. The retry attempt StartAttempt just
    created was never sent, so that money cannot be it: it is someone else's refund, untyped (v2), and
    Amazon's procedure forbids the retry. (Taken for the new 12.50 attempt, as a resend's would be, it
    explained the 10.00 and the retry was sent.)"""
    store, _ = store_with_declined_refund(api=PaymentApi.V2)
    details = replace(capture(), amazon_capture_id=f"v2:{CAPTURE_ID}")
    amazon = RetryAmazonPay(capture=details)
    assert steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)["decision"] == "eligible"
    amazon.capture = replace(details, refunded_amount=Price(Decimal("10.00"), "USD"))

    result = steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)

    assert ("Refund", f"{REFUND_ID}_2") not in amazon.calls
    refund = store.refunds[REFUND_ID]
    assert (refund.status, refund.reason_code) == (
        RefundStatus.MANUAL_ACTION_REQUIRED, "Untyped external refund found: v2-refunded-10.00",
    )  # fmt: skip
    assert result["refund_status"] == "ManualActionRequired"
