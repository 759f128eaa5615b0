"""The refund service over in-memory doubles: what is stored, what is sent to Amazon, and when."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import CaptureDetails, Price, RefundDetails
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.models import Refund, RefundStatus
from amazon_pay_refunds.use_cases.errors import (
    AmazonRefused,
    CaptureNotRefundable,
    IdempotencyConflict,
    ReservationRefused,
    UnknownSeller,
)
from amazon_pay_refunds.use_cases.refund_requests import RefundRequest, RefundService
from amazon_pay_refunds.use_cases.submission import FaultPoint, deadline_for
from tests.support.doubles import (
    CAPTURE_ID,
    NOW,
    MemoryStore,
    ScriptedAmazonPay,
    capture_details,
    credentials,
    refund_details,
)

UNAVAILABLE = AmazonPayError("ServiceUnavailable", "try later", http_status=503)
TIMEOUT = AmazonPayError("RequestTimeout", "no answer")
NOT_REFUNDABLE = AmazonPayError("CaptureNotRefundable", "closed", http_status=405)


def service(store: MemoryStore, amazon: ScriptedAmazonPay, **options: object) -> RefundService:
    return RefundService(store, amazon, credentials, now=lambda: NOW, **options)  # type: ignore[arg-type]


def request(refund_id: str = "r1", amount: str = "12.50", **changes: object) -> RefundRequest:
    fields: dict[str, object] = {
        "refund_id": refund_id,
        "amazon_capture_id": CAPTURE_ID,
        "amount": Decimal(amount),
        "currency_code": "USD",
    }
    fields.update(changes)
    return RefundRequest(**fields)  # type: ignore[arg-type]


def test_new_refund_is_sent_as_attempt_one_and_answered_pending() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay()
    outcome = service(store, amazon).request_refund(request(), deadline=99.0)
    assert (outcome.created, outcome.refund.status) == (True, RefundStatus.PENDING)
    assert amazon.refund_calls == [{"reference": "r1_1", "amount": Decimal("12.50"), "deadline": 99.0}]


def test_reservation_is_stored_before_amazon_is_called() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay()
    seen: list[tuple[FaultPoint, bool]] = []

    def observe(point: FaultPoint, refund: Refund) -> None:
        seen.append((point, "r1" in store.ledgers[CAPTURE_ID].refund_ids and not amazon.refund_calls))

    service(store, amazon, fault_hook=observe).request_refund(request(), deadline=99.0)
    assert seen[0] == ("after_reservation", True)


def test_unknown_outcome_keeps_the_refund_requested_with_its_reservation() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay(refund_answers=[TIMEOUT])
    outcome = service(store, amazon).request_refund(request(), deadline=99.0)
    assert (outcome.created, outcome.refund.status) == (True, RefundStatus.REQUESTED)
    assert store.ledgers[CAPTURE_ID].in_flight == Decimal("12.50")


def test_our_credentials_refused_keeps_the_refund_requested() -> None:
    denied = AmazonPayError("SignatureDoesNotMatch", "bad signature", http_status=403)
    store, amazon = MemoryStore(), ScriptedAmazonPay(refund_answers=[denied])
    outcome = service(store, amazon).request_refund(request(), deadline=99.0)
    assert outcome.refund.status is RefundStatus.REQUESTED


def test_permanent_refusal_fails_the_refund_releases_it_and_raises_amazons_code() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay(refund_answers=[NOT_REFUNDABLE])
    with pytest.raises(AmazonRefused) as refused:
        service(store, amazon).request_refund(request(), deadline=99.0)
    assert refused.value.code == "CaptureNotRefundable"
    assert store.refunds["r1"].status is RefundStatus.FAILED
    assert store.ledgers[CAPTURE_ID].available == Decimal("100.00")


def test_capture_lookup_unreachable_stores_the_refund_without_reservation_and_sends_nothing() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay(capture_answers=[UNAVAILABLE])
    outcome = service(store, amazon).request_refund(request(), deadline=99.0)
    assert outcome.refund.reservation_pending and outcome.refund.status is RefundStatus.REQUESTED
    assert amazon.refund_calls == []
    assert CAPTURE_ID not in store.ledgers


def test_capture_not_completed_is_refused_before_anything_is_stored() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay(capture_answers=[capture_details(state="Closed")])
    with pytest.raises(CaptureNotRefundable):
        service(store, amazon).request_refund(request(), deadline=99.0)
    assert store.refunds == {}


def test_over_reservation_is_refused_with_requested_and_available() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay(capture_answers=[capture_details("10.00")])
    with pytest.raises(ReservationRefused) as refused:
        service(store, amazon).request_refund(request(amount="10.01"), deadline=99.0)
    assert refused.value.code == "RefundExceedsCapture"
    assert refused.value.details == {"requested": "10.01", "available": "10.00", "currency_code": "USD"}


def test_replay_with_the_same_body_returns_the_refund_without_calling_amazon_again() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay()
    refunds = service(store, amazon)
    refunds.request_refund(request(), deadline=99.0)
    again = refunds.request_refund(request(), deadline=99.0)
    assert again.created is False
    assert len(amazon.refund_calls) == 1


def test_same_refund_id_with_another_amount_conflicts() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay()
    refunds = service(store, amazon)
    refunds.request_refund(request(), deadline=99.0)
    with pytest.raises(IdempotencyConflict):
        refunds.request_refund(request(amount="12.49"), deadline=99.0)


def test_unknown_seller_is_refused_before_anything_is_stored() -> None:
    store = MemoryStore()
    with pytest.raises(UnknownSeller):
        service(store, ScriptedAmazonPay()).request_refund(request(seller_id="A9OTHER"), deadline=99.0)
    assert store.refunds == {}


def test_submit_requested_reserves_a_pending_reservation_before_sending() -> None:
    store = MemoryStore()
    amazon = ScriptedAmazonPay(capture_answers=[UNAVAILABLE, capture_details()])
    refunds = service(store, amazon)
    refunds.request_refund(request(), deadline=99.0)
    finished = refunds.submit_requested("r1", deadline=99.0)
    assert finished.status is RefundStatus.PENDING and not finished.reservation_pending
    assert store.ledgers[CAPTURE_ID].in_flight == Decimal("12.50")
    assert [c["reference"] for c in amazon.refund_calls] == ["r1_1"]


def test_submit_requested_resends_the_unchanged_reference_id() -> None:
    store, amazon = (
        MemoryStore(),
        ScriptedAmazonPay(refund_answers=[TIMEOUT, *ScriptedAmazonPay().refund_answers]),
    )
    refunds = service(store, amazon)
    refunds.request_refund(request(), deadline=99.0)
    finished = refunds.submit_requested("r1", deadline=99.0)
    assert finished.status is RefundStatus.PENDING
    assert [c["reference"] for c in amazon.refund_calls] == ["r1_1", "r1_1"]


def test_submit_requested_leaves_a_refund_past_requested_alone() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay()
    refunds = service(store, amazon)
    refunds.request_refund(request(), deadline=99.0)
    refunds.submit_requested("r1", deadline=99.0)
    assert len(amazon.refund_calls) == 1


def test_pending_reservation_failed_on_a_closed_capture_releases_nothing() -> None:
    store = MemoryStore()
    amazon = ScriptedAmazonPay(capture_answers=[UNAVAILABLE, capture_details(state="Closed")])
    refunds = service(store, amazon)
    refunds.request_refund(request(), deadline=99.0)
    finished = refunds.submit_requested("r1", deadline=99.0)
    assert (finished.status, finished.reason_code) == (RefundStatus.FAILED, "CaptureNotRefundable")
    assert amazon.refund_calls == []


def test_deadline_keeps_a_safety_margin_from_the_remaining_time() -> None:
    assert deadline_for(10_000, margin_seconds=3.0, monotonic=lambda: 100.0) == pytest.approx(107.0)


def test_deadline_is_never_in_the_past_of_now_and_is_capped() -> None:
    assert deadline_for(1_000, margin_seconds=3.0, monotonic=lambda: 100.0) == 100.0
    assert deadline_for(900_000, monotonic=lambda: 0.0) == 20.0


class CountingStore(MemoryStore):
    """Records every reservation attempt, with whether it carried the capture's details."""

    def __init__(self) -> None:
        super().__init__()
        self.reservations: list[bool] = []

    def create_refund_with_reservation(self, refund: Refund, ledger_seed: LedgerSeed | None = None) -> Refund:
        self.reservations.append(ledger_seed is not None)
        return super().create_refund_with_reservation(refund, ledger_seed)


def test_first_refund_on_a_capture_reserves_once_with_the_capture_details() -> None:
    store, amazon = CountingStore(), ScriptedAmazonPay()
    service(store, amazon).request_refund(request(), deadline=99.0)
    assert store.reservations == [True]  # no reservation tried (and cancelled) before Amazon was asked


def test_later_refunds_reserve_on_the_ledger_without_the_captures_details() -> None:
    store, amazon = CountingStore(), ScriptedAmazonPay()
    service(store, amazon).request_refund(request("r1"), deadline=99.0)
    service(store, amazon).request_refund(request("r2"), deadline=99.0)
    assert store.reservations == [True, False]


# --- Amazon's record of the capture is checked before each Refund call (the headroom check) -------------

A_TO_Z_ID = "S01-1234567-1234567-R000077"


def a_to_z(amount: str) -> RefundDetails:
    answer = refund_details(A_TO_Z_ID, "Completed")
    return replace(
        answer,
        refund_type="AmazonA-ZRefund",
        refund_reference_id="AZ-claim-77",
        refund_amount=Price(Decimal(amount), "USD"),
    )


def capture_listing(*amazon_refund_ids: str) -> CaptureDetails:
    return replace(capture_details("100.00"), id_list=amazon_refund_ids)


def first_refund_then_a_to_z(a_to_z_amount: str) -> tuple[MemoryStore, ScriptedAmazonPay]:
    """r1 (60.00 of 100.00) is with Amazon; then Amazon refunds the buyer itself, and no IPN told us yet."""
    store = MemoryStore()
    amazon = ScriptedAmazonPay(refund_answers=[refund_details("S01-1234567-1234567-R000001")])
    service(store, amazon).request_refund(request("r1", "60.00"), deadline=99.0)
    amazon.capture_answers = [capture_listing("S01-1234567-1234567-R000001", A_TO_Z_ID)]
    amazon.refund_details_answers = {A_TO_Z_ID: a_to_z(a_to_z_amount)}
    return store, amazon


def test_a_refund_that_an_unreported_a_to_z_refund_leaves_no_room_for_is_refused_and_not_sent() -> None:
    store, amazon = first_refund_then_a_to_z("30.00")
    with pytest.raises(AmazonRefused) as refused:
        service(store, amazon).request_refund(request("r2", "20.00"), deadline=99.0)
    assert refused.value.code == "RefundExceedsCapture"
    assert [call["reference"] for call in amazon.refund_calls] == ["r1_1"]  # r2 never reached Amazon
    ledger = store.ledgers[CAPTURE_ID]
    assert (ledger.external, ledger.in_flight, ledger.available) == (
        Decimal("30.00"),
        Decimal("60.00"),
        Decimal("10.00"),
    )
    stored = store.get_refund("r2")
    assert stored is not None and stored.status is RefundStatus.FAILED


def test_an_unreported_external_refund_that_still_fits_is_recorded_and_the_refund_sent() -> None:
    store, amazon = first_refund_then_a_to_z("10.00")
    outcome = service(store, amazon).request_refund(request("r2", "20.00"), deadline=99.0)
    assert outcome.refund.status is RefundStatus.PENDING
    assert store.ledgers[CAPTURE_ID].external == Decimal("10.00")


def test_our_own_refund_whose_answer_was_lost_is_not_taken_for_an_external_one() -> None:
    store = MemoryStore()
    amazon = ScriptedAmazonPay(refund_answers=[UNAVAILABLE, refund_details("S01-1234567-1234567-R000009")])
    first = service(store, amazon).request_refund(request("r1", "60.00"), deadline=99.0).refund
    assert first.status is RefundStatus.REQUESTED  # Amazon made it, but its answer never came
    lost_id = "S01-1234567-1234567-R000005"
    made = replace(refund_details(lost_id), refund_reference_id="r1_1")
    amazon.capture_answers = [capture_listing(lost_id)]
    amazon.refund_details_answers = {lost_id: replace(made, refund_amount=Price(Decimal("60.00"), "USD"))}
    service(store, amazon).request_refund(request("r2", "20.00"), deadline=99.0)
    assert store.ledgers[CAPTURE_ID].external == Decimal("0")


def test_a_refund_named_like_ours_but_of_another_amount_is_external() -> None:
    store, amazon = first_refund_then_a_to_z("10.00")
    foreign = "S01-1234567-1234567-R000005"  # the seller's ERP, RefundReferenceId r1_7
    erp = replace(
        refund_details(foreign), refund_reference_id="r1_7", refund_amount=Price(Decimal("15.00"), "USD")
    )
    amazon.capture_answers = [capture_listing(foreign)]
    amazon.refund_details_answers = {foreign: erp}
    service(store, amazon).request_refund(request("r2", "20.00"), deadline=99.0)
    assert store.ledgers[CAPTURE_ID].external == Decimal("15.00")


def test_when_amazon_cannot_show_the_capture_the_refund_stays_requested_and_unsent() -> None:
    store, amazon = first_refund_then_a_to_z("10.00")
    amazon.capture_answers = [UNAVAILABLE]
    outcome = service(store, amazon).request_refund(request("r2", "20.00"), deadline=99.0)
    assert outcome.refund.status is RefundStatus.REQUESTED
    assert [call["reference"] for call in amazon.refund_calls] == ["r1_1"]


def test_a_refund_amazon_lists_on_the_capture_but_will_not_describe_holds_the_next_one_for_a_person() -> None:
    store, amazon = first_refund_then_a_to_z("10.00")
    hidden = "S01-1234567-1234567-R000066"
    amazon.capture_answers = [capture_listing("S01-1234567-1234567-R000001", hidden)]
    amazon.refund_details_answers = {}  # GetRefundDetails: InvalidParameterValue (permanent)
    outcome = service(store, amazon).request_refund(request("r2", "20.00"), deadline=99.0)
    assert (outcome.refund.status, outcome.refund.reason_code) == (
        RefundStatus.MANUAL_ACTION_REQUIRED,
        f"External refund {hidden} unreadable (InvalidParameterValue)",
    )
    assert [call["reference"] for call in amazon.refund_calls] == ["r1_1"]  # r2 never sent
    assert store.ledgers[CAPTURE_ID].in_flight == Decimal("80.00")  # its reservation is held


def test_the_first_refund_opens_the_ledger_only_after_reading_every_refund_already_on_the_capture() -> None:
    store = MemoryStore()
    pending = replace(a_to_z("50.00"), refund_status=replace(a_to_z("50.00").refund_status, state="Pending"))
    amazon = ScriptedAmazonPay(capture_answers=[capture_listing(A_TO_Z_ID)])
    amazon.refund_details_answers = {A_TO_Z_ID: pending}  # not in RefundedAmount, still taken
    with pytest.raises(ReservationRefused):
        service(store, amazon).request_refund(request("r1", "60.00"), deadline=99.0)
    assert amazon.refund_calls == []
    amazon.refund_details_answers = {}
    with pytest.raises(AmazonRefused) as refused:  # a refund Amazon will not describe: no ledger opens
        service(store, amazon).request_refund(request("r2", "10.00"), deadline=99.0)
    assert refused.value.code == "InvalidParameterValue"
    assert store.ledgers == {} and amazon.refund_calls == []
