"""The RetryWorkflow's steps: what is checked at Amazon, what is sent, what is stored."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.core.lifecycle import AttemptOutcome, ManualActionRequired
from amazon_pay_refunds.core.models import AttemptState, ExternalRefund, RefundStatus
from amazon_pay_refunds.use_cases.retries import REASON_A_TO_Z, AmazonPayUnavailable, OutcomeAlreadyKnown

from .doubles import (
    CAPTURE_ID,
    FIRST_AMAZON_ID,
    NOW,
    REFUND_ID,
    RETRY_AMAZON_ID,
    MemoryTokens,
    RetryAmazonPay,
    capture,
    details,
    observe,
    status,
    steps,
    store_with_declined_refund,
)

UNAVAILABLE = AmazonPayError("ServiceUnavailable", "try later", http_status=503)
TIMEOUT = AmazonPayError("RequestTimeout", "no answer")


# --- CheckEligibility ---------------------------------------------------------------------------------


def test_a_retry_scheduled_refund_on_a_completed_capture_is_eligible() -> None:
    store, _ = store_with_declined_refund()
    amazon = RetryAmazonPay(capture=capture(id_list=[FIRST_AMAZON_ID]))
    result = steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)
    assert (result["decision"], result["reason"]) == ("eligible", None)
    # Our own declined attempt is not looked up: it cannot be an A-to-z refund.
    assert amazon.operations() == ["GetCaptureDetails"]


def test_an_a_to_z_refund_amazon_lists_on_the_capture_blocks_the_retry() -> None:
    store, _ = store_with_declined_refund()
    claim = "S01-1234567-1234567-R000009"
    amazon = RetryAmazonPay(
        capture=capture(id_list=[FIRST_AMAZON_ID, claim]),
        refunds_by_id={claim: details(claim, "Completed", refund_type="AmazonA-ZRefund")},
    )
    result = steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)
    assert (result["decision"], result["reason"]) == ("not_eligible", f"{REASON_A_TO_Z}: {claim}")
    assert ("GetRefundDetails", claim) in amazon.calls


def test_an_a_to_z_refund_the_ledger_recorded_from_an_ipn_blocks_the_retry_without_asking_amazon() -> None:
    store, _ = store_with_declined_refund()
    claim = "S01-1234567-1234567-R000009"
    ledger = store.ledgers[CAPTURE_ID]
    external = ExternalRefund(claim, Decimal("5.00"), "AmazonA-ZRefund", NOW)
    store.ledgers[CAPTURE_ID] = replace(ledger, external_refunds=(external,))
    amazon = RetryAmazonPay(capture=capture(id_list=[FIRST_AMAZON_ID, claim]))
    result = steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)
    assert (result["decision"], result["reason"]) == ("not_eligible", f"{REASON_A_TO_Z}: {claim}")
    assert "GetRefundDetails" not in amazon.operations()


def test_a_closed_capture_blocks_the_retry() -> None:
    store, _ = store_with_declined_refund()
    result = steps(store, RetryAmazonPay(capture=capture("Closed"))).check_eligibility(
        REFUND_ID, 1, deadline=99.0
    )
    assert (result["decision"], result["reason"]) == ("not_eligible", "Capture Closed")


def test_a_refund_that_moved_on_needs_no_retry_and_amazon_is_not_asked() -> None:
    store, _ = store_with_declined_refund()
    observe(store, ManualActionRequired(reason="outcome unknown too long", cause="reconciler"))
    amazon = RetryAmazonPay()
    result = steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)
    assert (result["decision"], result["refund_status"]) == ("not_needed", "ManualActionRequired")
    assert amazon.calls == []


def test_amazon_unreachable_during_the_check_is_retried_by_the_workflow() -> None:
    store, _ = store_with_declined_refund()
    with pytest.raises(AmazonPayUnavailable):
        steps(store, RetryAmazonPay(capture=UNAVAILABLE)).check_eligibility(REFUND_ID, 1, deadline=99.0)


# --- StartAttempt -------------------------------------------------------------------------------------


def test_the_retry_is_attempt_two_with_the_next_reference_id_and_the_refund_becomes_pending() -> None:
    store, _ = store_with_declined_refund()
    amazon = RetryAmazonPay()
    result = steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)
    # The capture is read again just before: its refunds must still leave room (the headroom check).
    assert amazon.calls == [("GetCaptureDetails", CAPTURE_ID), ("Refund", f"{REFUND_ID}_2")]
    assert (result["decision"], result["attempt_state"], result["refund_status"]) == (
        "submitted",
        "Pending",
        "Pending",
    )
    refund = store.get_refund(REFUND_ID)
    assert refund is not None
    assert [(a.attempt, a.refund_reference_id, a.amazon_refund_id) for a in refund.attempts] == [
        (1, f"{REFUND_ID}_1", FIRST_AMAZON_ID),
        (2, f"{REFUND_ID}_2", RETRY_AMAZON_ID),
    ]


def test_running_the_start_step_again_does_not_send_a_pending_attempt_again() -> None:
    store, _ = store_with_declined_refund()
    amazon = RetryAmazonPay()
    steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)
    again = steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)
    assert amazon.operations() == ["GetCaptureDetails", "Refund"]
    assert again["attempt_state"] == "Pending"


def test_an_unknown_answer_is_retried_with_the_same_reference_id() -> None:
    store, _ = store_with_declined_refund()
    amazon = RetryAmazonPay(refund_answers=[TIMEOUT, details()])
    with pytest.raises(AmazonPayUnavailable):
        steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)
    refund = store.get_refund(REFUND_ID)
    assert refund is not None and refund.latest_attempt.state is AttemptState.REQUESTED
    result = steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)
    assert amazon.operations() == ["GetCaptureDetails", "Refund", "GetCaptureDetails", "Refund"]
    assert [ref for op, ref in amazon.calls if op == "Refund"] == [f"{REFUND_ID}_2", f"{REFUND_ID}_2"]
    assert result["attempt_state"] == "Pending"


def test_a_retry_amazon_refuses_outright_requires_manual_action() -> None:
    store, _ = store_with_declined_refund()
    refused = AmazonPayError("TransactionAmountExceeded", "too much", http_status=400)
    result = steps(store, RetryAmazonPay(refund_answers=[refused])).start_attempt(REFUND_ID, 2, deadline=99.0)
    assert (result["attempt_state"], result["refund_status"]) == ("Declined", "ManualActionRequired")


def test_no_retry_is_sent_for_a_refund_no_longer_retry_scheduled() -> None:
    store, _ = store_with_declined_refund(reason_code="AmazonRejected")
    amazon = RetryAmazonPay()
    result = steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)
    assert result["decision"] == "not_needed"
    assert amazon.calls == []
    assert status(store) is RefundStatus.MANUAL_ACTION_REQUIRED


# --- AwaitOutcome and PollOutcome ---------------------------------------------------------------------


def test_awaiting_stores_the_task_token_for_the_ipn_handler() -> None:
    store, _ = store_with_declined_refund()
    steps(store, RetryAmazonPay()).start_attempt(REFUND_ID, 2, deadline=99.0)
    tokens = MemoryTokens()
    result = steps(store, RetryAmazonPay(), tokens).await_outcome(REFUND_ID, 2, "token-2")
    assert result["decision"] == "waiting"
    assert tokens.get(REFUND_ID, 2) == "token-2"


def test_awaiting_an_outcome_the_ipn_already_stored_reads_it_instead_of_waiting() -> None:
    store, _ = store_with_declined_refund()
    steps(store, RetryAmazonPay()).start_attempt(REFUND_ID, 2, deadline=99.0)
    observe(store, AttemptOutcome(AttemptState.COMPLETED, "ipn:n2", None, RETRY_AMAZON_ID))
    tokens = MemoryTokens()
    with pytest.raises(OutcomeAlreadyKnown):
        steps(store, RetryAmazonPay(), tokens).await_outcome(REFUND_ID, 2, "token-2")
    assert tokens.get(REFUND_ID, 2) == "token-2"


def test_polling_stores_what_get_refund_details_reports() -> None:
    store, _ = store_with_declined_refund()
    steps(store, RetryAmazonPay()).start_attempt(REFUND_ID, 2, deadline=99.0)
    amazon = RetryAmazonPay(refunds_by_id={RETRY_AMAZON_ID: details(state="Completed")})
    result = steps(store, amazon).poll_outcome(REFUND_ID, 2, 0, deadline=99.0)
    assert (result["attempt_state"], result["refund_status"], result["polls"]) == (
        "Completed",
        "Completed",
        1,
    )
    refund = store.get_refund(REFUND_ID)
    assert refund is not None and refund.history[-1].cause == "poll:GetRefundDetails"


def test_a_polled_second_processing_failure_requires_manual_action() -> None:
    store, _ = store_with_declined_refund()
    steps(store, RetryAmazonPay()).start_attempt(REFUND_ID, 2, deadline=99.0)
    declined = details(state="Declined", reason_code="ProcessingFailure")
    amazon = RetryAmazonPay(refunds_by_id={RETRY_AMAZON_ID: declined})
    result = steps(store, amazon).poll_outcome(REFUND_ID, 2, 3, deadline=99.0)
    assert (result["attempt_state"], result["refund_status"], result["polls"]) == (
        "Declined",
        "ManualActionRequired",
        4,
    )


def test_polling_a_settled_attempt_does_not_ask_amazon() -> None:
    store, _ = store_with_declined_refund()
    steps(store, RetryAmazonPay()).start_attempt(REFUND_ID, 2, deadline=99.0)
    observe(store, AttemptOutcome(AttemptState.COMPLETED, "ipn:n2", None, RETRY_AMAZON_ID))
    amazon = RetryAmazonPay()
    assert steps(store, amazon).poll_outcome(REFUND_ID, 2, 0, deadline=99.0)["attempt_state"] == "Completed"
    assert amazon.calls == []


# --- RequireManualAction ------------------------------------------------------------------------------


def test_manual_action_stores_the_reason_on_the_refund() -> None:
    store, _ = store_with_declined_refund()
    result = steps(store, RetryAmazonPay()).require_manual_action(
        REFUND_ID, REASON_A_TO_Z, "retry:not-eligible"
    )
    assert (result["refund_status"], result["reason_code"]) == ("ManualActionRequired", REASON_A_TO_Z)
    refund = store.get_refund(REFUND_ID)
    assert refund is not None and refund.history[-1].cause == "retry:not-eligible"


def test_manual_action_never_reopens_a_completed_refund() -> None:
    store, _ = store_with_declined_refund()
    steps(store, RetryAmazonPay()).start_attempt(REFUND_ID, 2, deadline=99.0)
    observe(store, AttemptOutcome(AttemptState.COMPLETED, "ipn:n2", None, RETRY_AMAZON_ID))
    result = steps(store, RetryAmazonPay()).require_manual_action(REFUND_ID, "retry workflow failed", "x")
    assert result["refund_status"] == "Completed"


# --- refunds others made on the capture (issue 9) -----------------------------------------------------


def test_an_a_to_z_refund_that_came_after_the_eligibility_check_stops_the_retry_before_it_is_sent() -> None:
    store, _ = store_with_declined_refund()
    claim = "S01-1234567-1234567-R000009"
    amazon = RetryAmazonPay(capture=capture(id_list=[FIRST_AMAZON_ID]))
    assert steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)["decision"] == "eligible"
    amazon.capture = capture(id_list=[FIRST_AMAZON_ID, claim])  # Amazon refunds the buyer meanwhile
    amazon.refunds_by_id = {claim: details(claim, "Pending", refund_type="AmazonA-ZRefund", reference="AZ1")}

    result = steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)

    assert ("Refund", f"{REFUND_ID}_2") not in amazon.calls
    assert (result["decision"], result["refund_status"]) == ("not_needed", "ManualActionRequired")
    refund = store.refunds[REFUND_ID]
    assert (refund.status, refund.reason_code) == (
        RefundStatus.MANUAL_ACTION_REQUIRED,
        f"{REASON_A_TO_Z}: {claim}",
    )
    assert [e.amazon_refund_id for e in store.ledgers[CAPTURE_ID].external_refunds] == [claim]


def test_a_refund_named_like_our_next_attempt_is_external_and_its_type_counts() -> None:
    store, _ = store_with_declined_refund()
    erp = "S01-1234567-1234567-R000009"  # the seller's other system took `{refund_id}_2` first
    amazon = RetryAmazonPay(
        capture=capture(id_list=[FIRST_AMAZON_ID, erp]),
        refunds_by_id={erp: replace(details(erp, "Completed", reference=f"{REFUND_ID}_2"))},
    )
    result = steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)
    assert result["decision"] == "eligible"  # a SellerInitiated refund does not forbid the retry
    [external] = store.ledgers[CAPTURE_ID].external_refunds
    assert (external.amazon_refund_id, external.refund_type) == (erp, "SellerInitiated")


def test_a_refund_amazon_lists_but_will_not_describe_means_no_retry_but_a_person() -> None:
    store, _ = store_with_declined_refund()
    hidden = "S01-1234567-1234567-R000009"
    refused = AmazonPayError("InvalidParameterValue", "invalid refund id", http_status=400)
    amazon = RetryAmazonPay(
        capture=capture(id_list=[FIRST_AMAZON_ID, hidden]), refunds_by_id={hidden: refused}
    )
    result = steps(store, amazon).check_eligibility(REFUND_ID, 1, deadline=99.0)
    assert result["decision"] == "not_eligible"
    assert result["reason"] == f"External refund {hidden} unreadable (InvalidParameterValue)"


def test_a_retry_amazon_already_made_is_sent_again_unchanged_even_after_an_a_to_z_refund() -> None:
    store, _ = store_with_declined_refund()
    amazon = RetryAmazonPay(refund_answers=[TIMEOUT, details()])  # made at Amazon, the answer lost
    with pytest.raises(AmazonPayUnavailable):
        steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)
    claim = "S01-1234567-1234567-R000009"
    amazon.capture = capture(id_list=[FIRST_AMAZON_ID, RETRY_AMAZON_ID, claim])
    amazon.refunds_by_id = {
        RETRY_AMAZON_ID: replace(
            details(), refund_amount=replace(details().refund_amount, amount=Decimal("12.50"))
        ),
        claim: details(claim, "Completed", refund_type="AmazonA-ZRefund", reference="AZ1"),
    }
    result = steps(store, amazon).start_attempt(REFUND_ID, 2, deadline=99.0)
    # Not a new retry: the same call only learns what Amazon made (Amazon answers it idempotently).
    assert [ref for op, ref in amazon.calls if op == "Refund"] == [f"{REFUND_ID}_2", f"{REFUND_ID}_2"]
    assert (result["attempt_state"], result["refund_status"]) == ("Pending", "Pending")
    assert store.refunds[REFUND_ID].latest_attempt.amazon_refund_id == RETRY_AMAZON_ID
