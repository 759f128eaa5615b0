from __future__ import annotations

from decimal import Decimal

import pytest

from amazon_pay_refunds.core.ledger import EffectKind, LedgerEffect
from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    AttemptOutcome,
    ManualActionRequired,
    NewAttemptStarted,
    PermanentlyRefused,
    ResolvedOutOfBand,
    TransitionNotAllowed,
    request_refund,
    reservation_state,
)
from amazon_pay_refunds.core.models import AttemptState, DetailType, RefundStatus
from amazon_pay_refunds.core.references import InvalidRefundId
from tests.support.domain import CAPTURE_ID, T0, drive, new_refund, step

PENDING, COMPLETED, DECLINED = AttemptState.PENDING, AttemptState.COMPLETED, AttemptState.DECLINED
R1 = "S01-1234567-1234567-R000001"
R2 = "S01-1234567-1234567-R000002"


def accepted(attempt: int = 1, amazon_refund_id: str = R1) -> AttemptAccepted:
    return AttemptAccepted(attempt, amazon_refund_id)


def ipn(
    state: AttemptState, notification: str, reason: str | None = None, refund_id: str = R1
) -> AttemptOutcome:
    return AttemptOutcome(state, f"ipn:{notification}", reason, amazon_refund_id=refund_id)


def declined_pf(notification: str = "n-decl", refund_id: str = R1) -> AttemptOutcome:
    return ipn(DECLINED, notification, "ProcessingFailure", refund_id)


# --- request -------------------------------------------------------------------------------------------


def test_request_creates_a_requested_refund_with_attempt_one_prepared() -> None:
    refund = new_refund()
    assert refund.status is RefundStatus.REQUESTED
    assert [(a.attempt, a.refund_reference_id, a.state) for a in refund.attempts] == [
        (1, "ord-1001-r1_1", AttemptState.REQUESTED)
    ]


def test_request_reserves_the_amount() -> None:
    transition = request_refund(
        refund_id="r1",
        seller_id="A1",
        amazon_capture_id=CAPTURE_ID,
        amount=Decimal("5.00"),
        currency_code="USD",
        seller_refund_note=None,
        soft_descriptor=None,
        metadata={},
        request_fingerprint="x",
        at=T0,
    )
    assert transition.effect == LedgerEffect(EffectKind.RESERVE, "r1", Decimal("5.00"))


def test_request_is_published_as_refund_requested() -> None:
    assert new_refund().history[0].detail_types == (DetailType.REQUESTED,)


def test_request_with_invalid_refund_id_is_refused() -> None:
    with pytest.raises(InvalidRefundId):
        new_refund(refund_id="has_underscore")


# --- happy path ----------------------------------------------------------------------------------------


def test_accepted_attempt_makes_the_refund_pending() -> None:
    refund = drive(new_refund(), accepted())
    assert refund.status is RefundStatus.PENDING
    assert refund.attempts[0].amazon_refund_id == R1
    assert refund.history[-1].to_resource()["cause"] == "amazon:Refund"


def test_completed_ipn_completes_the_refund_and_the_reservation() -> None:
    pending = drive(new_refund(), accepted())
    transition = step(pending, ipn(COMPLETED, "n1"), seconds=5)
    assert transition.refund.status is RefundStatus.COMPLETED
    assert transition.effect == LedgerEffect(EffectKind.COMPLETE, "ord-1001-r1", Decimal("12.50"))
    assert transition.new_history[0].detail_types == (DetailType.COMPLETED,)


def test_completed_ipn_before_the_refund_answer_completes_by_reference_id() -> None:
    outcome = AttemptOutcome(COMPLETED, "ipn:n1", amazon_refund_id=R1, refund_reference_id="ord-1001-r1_1")
    refund = drive(new_refund(), outcome)
    assert refund.status is RefundStatus.COMPLETED
    assert refund.attempts[0].amazon_refund_id == R1


def test_poll_outcome_completes_the_refund() -> None:
    refund = drive(
        new_refund(), accepted(), AttemptOutcome(COMPLETED, "poll:GetRefundDetails", amazon_refund_id=R1)
    )
    assert refund.status is RefundStatus.COMPLETED
    assert refund.history[-1].cause == "poll:GetRefundDetails"


# --- duplicates and late observations ------------------------------------------------------------------


def test_pending_ipn_after_the_pending_answer_changes_nothing() -> None:
    pending = drive(new_refund(), accepted())
    transition = step(pending, ipn(PENDING, "n0"))
    assert not transition.changed


def test_duplicate_completed_ipn_changes_nothing() -> None:
    done = drive(new_refund(), accepted(), ipn(COMPLETED, "n1"))
    assert not step(done, ipn(COMPLETED, "n1")).changed


def test_same_notification_reference_id_is_ignored_even_if_it_says_something_else() -> None:
    done = drive(new_refund(), accepted(), ipn(COMPLETED, "n1"))
    assert not step(done, ipn(DECLINED, "n1", "AmazonRejected")).changed


def test_late_pending_after_completed_is_recorded_but_changes_no_status() -> None:
    done = drive(new_refund(), accepted(), ipn(COMPLETED, "n1"))
    transition = step(done, ipn(PENDING, "n0"))
    assert transition.refund.status is RefundStatus.COMPLETED
    assert transition.refund.attempts == done.attempts
    assert [o.cause for o in transition.refund.late_observations] == ["ipn:n0"]
    assert transition.new_history == ()
    assert transition.effect is None


def test_declined_after_completed_cannot_undo_completion() -> None:
    done = drive(new_refund(), accepted(), ipn(COMPLETED, "n1"))
    after = step(done, ipn(DECLINED, "n2", "AmazonRejected")).refund
    assert (after.status, after.attempts[0].state) == (RefundStatus.COMPLETED, COMPLETED)


def test_outcome_for_an_unknown_amazon_refund_id_is_recorded_only() -> None:
    pending = drive(new_refund(), accepted())
    after = step(pending, ipn(COMPLETED, "n9", refund_id="S01-OTHER")).refund
    assert after.status is RefundStatus.PENDING
    assert after.late_observations[0].amazon_refund_id == "S01-OTHER"


def test_reference_naming_an_attempt_bound_to_another_amazon_refund_id_is_not_applied() -> None:
    pending = drive(new_refund(), accepted())
    outcome = AttemptOutcome(
        COMPLETED, "ipn:n9", amazon_refund_id="S01-OTHER", refund_reference_id="ord-1001-r1_1"
    )
    assert step(pending, outcome).refund.status is RefundStatus.PENDING


def test_seen_notifications_lists_applied_and_recorded_ipns() -> None:
    done = drive(new_refund(), accepted(), ipn(COMPLETED, "n1"), ipn(PENDING, "n0"))
    assert done.seen_notifications == {"n1", "n0"}


# --- declines ------------------------------------------------------------------------------------------


def test_processing_failure_with_retries_left_schedules_a_retry() -> None:
    transition = step(drive(new_refund(), accepted()), declined_pf())
    assert (transition.refund.status, transition.refund.reason_code) == (
        RefundStatus.RETRY_SCHEDULED,
        "ProcessingFailure",
    )
    assert transition.new_history[0].detail_types == (DetailType.DECLINED, DetailType.RETRY_SCHEDULED)


def test_processing_failure_without_retries_left_requires_manual_action() -> None:
    refund = drive(new_refund(), accepted(), declined_pf(), max_retries=0)
    assert refund.status is RefundStatus.MANUAL_ACTION_REQUIRED
    assert refund.history[-1].detail_types == (DetailType.DECLINED, DetailType.MANUAL_ACTION_REQUIRED)


def test_amazon_rejected_requires_manual_action_at_once() -> None:
    refund = drive(new_refund(), accepted(), ipn(DECLINED, "n1", "AmazonRejected"), max_retries=3)
    assert (refund.status, refund.reason_code) == (RefundStatus.MANUAL_ACTION_REQUIRED, "AmazonRejected")


def test_a_decline_keeps_the_reservation_held() -> None:
    transition = step(drive(new_refund(), accepted()), ipn(DECLINED, "n1", "AmazonRejected"))
    assert transition.effect is None
    assert reservation_state(transition.refund) == "in_flight"


def test_retry_attempt_gets_the_next_reference_id_and_keeps_retry_scheduled() -> None:
    refund = drive(new_refund(), accepted(), declined_pf(), NewAttemptStarted(2))
    assert refund.status is RefundStatus.RETRY_SCHEDULED
    assert [(a.attempt, a.refund_reference_id, a.state) for a in refund.attempts][1] == (
        2,
        "ord-1001-r1_2",
        AttemptState.REQUESTED,
    )


def test_retry_that_completes_completes_the_refund() -> None:
    refund = drive(
        new_refund(),
        accepted(),
        declined_pf(),
        NewAttemptStarted(2),
        accepted(2, R2),
        ipn(COMPLETED, "n2", refund_id=R2),
    )
    assert refund.status is RefundStatus.COMPLETED
    assert [a.state for a in refund.attempts] == [DECLINED, COMPLETED]
    assert [h.to for h in refund.history] == [
        RefundStatus.REQUESTED,
        RefundStatus.PENDING,
        RefundStatus.RETRY_SCHEDULED,
        RefundStatus.PENDING,
        RefundStatus.COMPLETED,
    ]


def test_retry_declined_again_requires_manual_action() -> None:
    refund = drive(
        new_refund(), accepted(), declined_pf(), NewAttemptStarted(2), accepted(2, R2), declined_pf("n2", R2)
    )
    assert (refund.status, refund.reason_code) == (RefundStatus.MANUAL_ACTION_REQUIRED, "ProcessingFailure")


def test_new_attempt_replayed_changes_nothing() -> None:
    retrying = drive(new_refund(), accepted(), declined_pf(), NewAttemptStarted(2))
    assert not step(retrying, NewAttemptStarted(2)).changed


def test_new_attempt_is_refused_unless_a_retry_is_scheduled() -> None:
    with pytest.raises(TransitionNotAllowed):
        step(drive(new_refund(), accepted()), NewAttemptStarted(2))


def test_new_attempt_must_be_the_next_number() -> None:
    with pytest.raises(TransitionNotAllowed):
        step(drive(new_refund(), accepted(), declined_pf()), NewAttemptStarted(3))


# --- refusals ------------------------------------------------------------------------------------------


def test_refusal_of_the_first_attempt_fails_the_refund_and_releases_the_reservation() -> None:
    transition = step(new_refund(), PermanentlyRefused(1, "CaptureNotRefundable"))
    assert (transition.refund.status, transition.refund.reason_code) == (
        RefundStatus.FAILED,
        "CaptureNotRefundable",
    )
    assert transition.effect == LedgerEffect(EffectKind.RELEASE, "ord-1001-r1", Decimal("12.50"))
    assert transition.new_history[0].detail_types == (DetailType.FAILED,)


def test_refusal_of_a_retry_requires_manual_action_and_keeps_the_reservation() -> None:
    retrying = drive(new_refund(), accepted(), declined_pf(), NewAttemptStarted(2))
    transition = step(retrying, PermanentlyRefused(2, "CaptureNotRefundable"))
    assert transition.refund.status is RefundStatus.MANUAL_ACTION_REQUIRED
    assert transition.effect is None


@pytest.mark.parametrize("code", ["DuplicateRequest", "DuplicateReferenceId"])
def test_refusal_saying_the_reference_was_used_never_fails_the_refund(code: str) -> None:
    transition = step(new_refund(), PermanentlyRefused(1, code))
    assert transition.refund.status is RefundStatus.MANUAL_ACTION_REQUIRED
    assert transition.effect is None


def test_refusal_after_amazon_accepted_the_attempt_is_recorded_only() -> None:
    pending = drive(new_refund(), accepted())
    after = step(pending, PermanentlyRefused(1, "InvalidParameterValue")).refund
    assert after.status is RefundStatus.PENDING
    assert after.late_observations[0].reason_code == "InvalidParameterValue"


# --- manual action and out-of-band resolution ----------------------------------------------------------


def test_manual_action_is_published_with_its_reason() -> None:
    transition = step(new_refund(), ManualActionRequired("RefundOutcomeUnknown", "reconciler:stuck"))
    assert (transition.refund.status, transition.refund.reason_code) == (
        RefundStatus.MANUAL_ACTION_REQUIRED,
        "RefundOutcomeUnknown",
    )
    assert transition.new_history[0].detail_types == (DetailType.MANUAL_ACTION_REQUIRED,)


def test_manual_action_on_a_final_refund_changes_nothing() -> None:
    done = drive(new_refund(), accepted(), ipn(COMPLETED, "n1"))
    assert not step(done, ManualActionRequired("x", "reconciler:stuck")).changed


def test_completion_arriving_during_manual_action_completes_the_refund() -> None:
    refund = drive(new_refund(), accepted(), ManualActionRequired("RefundOutcomeUnknown", "reconciler:stuck"))
    assert drive(refund, ipn(COMPLETED, "n1")).status is RefundStatus.COMPLETED


def test_resolution_out_of_band_after_declines_releases_the_reservation() -> None:
    rejected = drive(new_refund(), accepted(), ipn(DECLINED, "n1", "AmazonRejected"))
    transition = step(rejected, ResolvedOutOfBand("gift_card", "GC-123"), seconds=50)
    assert transition.refund.status is RefundStatus.RESOLVED_OUT_OF_BAND
    assert transition.effect == LedgerEffect(EffectKind.RELEASE, "ord-1001-r1", Decimal("12.50"))
    assert transition.new_history[0].detail == {"method": "gift_card", "note": "GC-123"}


def test_resolution_while_an_attempt_may_still_complete_keeps_the_reservation() -> None:
    unknown = drive(
        new_refund(), accepted(), ManualActionRequired("RefundOutcomeUnknown", "reconciler:stuck")
    )
    transition = step(unknown, ResolvedOutOfBand("store_credit", "SC-1"), seconds=50)
    assert transition.refund.status is RefundStatus.RESOLVED_OUT_OF_BAND
    assert transition.effect is None


def test_late_completion_after_resolution_is_kept_on_the_attempt_but_the_status_stays() -> None:
    unknown = drive(
        new_refund(), accepted(), ManualActionRequired("RefundOutcomeUnknown", "reconciler:stuck")
    )
    resolved = drive(unknown, ResolvedOutOfBand("store_credit", "SC-1"))
    transition = step(resolved, ipn(COMPLETED, "n1"), seconds=60)
    assert transition.refund.status is RefundStatus.RESOLVED_OUT_OF_BAND
    assert transition.refund.attempts[0].state is COMPLETED
    assert transition.effect == LedgerEffect(EffectKind.COMPLETE, "ord-1001-r1", Decimal("12.50"))


def test_resolution_replayed_changes_nothing() -> None:
    rejected = drive(new_refund(), accepted(), ipn(DECLINED, "n1", "AmazonRejected"))
    resolved = drive(rejected, ResolvedOutOfBand("gift_card", "GC-123"))
    assert not step(resolved, ResolvedOutOfBand("gift_card", "GC-123")).changed


def test_resolution_is_refused_unless_manual_action_is_required() -> None:
    with pytest.raises(TransitionNotAllowed):
        step(drive(new_refund(), accepted()), ResolvedOutOfBand("gift_card", "GC-123"))
