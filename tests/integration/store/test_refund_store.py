from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from amazon_pay_refunds.adapters.dynamodb import (
    CurrencyMismatch,
    LedgerNotFound,
    RefundAlreadyExists,
    RefundExceedsCapture,
    RefundNotStored,
    RefundStore,
    VersionConflict,
)
from amazon_pay_refunds.core.classification import ReportedRefund
from amazon_pay_refunds.core.ledger import EffectKind, LedgerEffect, LedgerSeed
from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    AttemptOutcome,
    PermanentlyRefused,
    Transition,
    apply_observation,
)
from amazon_pay_refunds.core.models import AttemptState, PaymentApi, Refund, RefundStatus

from .support import CAPTURE_ID, T0, at, refund, seed

R1 = "S01-1234567-1234567-R000001"


def accept(seconds: float = 1) -> object:
    return lambda r: apply_observation(r, AttemptAccepted(1, R1), at=at(seconds))


def complete(seconds: float = 2) -> object:
    return lambda r: apply_observation(
        r, AttemptOutcome(AttemptState.COMPLETED, "ipn:n1", amazon_refund_id=R1), at=at(seconds)
    )


# --- creation and reservation ---------------------------------------------------------------------------


def test_created_refund_reads_back_equal(store: RefundStore) -> None:
    created = store.create_refund_with_reservation(refund(), seed())
    assert store.get_refund("ord-1001-r1") == created


def test_amounts_read_back_as_exact_decimals(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(amount="12.50"), seed())
    stored = store.get_refund("ord-1001-r1")
    assert stored is not None
    assert str(stored.amount) == "12.50"


def test_first_refund_opens_the_ledger_from_the_capture_details(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(amount="30.00"), seed("100.00"))
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    assert (ledger.captured, ledger.in_flight, ledger.available) == (
        Decimal("100.00"),
        Decimal("30.00"),
        Decimal("70.00"),
    )


def test_ledger_exists_only_once_the_first_refund_opened_it(store: RefundStore) -> None:
    assert not store.ledger_exists(CAPTURE_ID)
    store.create_refund_with_reservation(refund("r1", "10.00"), seed("100.00"))
    assert store.ledger_exists(CAPTURE_ID)


def test_known_refunds_names_our_refunds_their_amazon_ids_and_the_external_ones(store: RefundStore) -> None:
    assert store.known_refunds(CAPTURE_ID) is None
    store.create_refund_with_reservation(refund("r1", "10.00"), seed("100.00"))
    store.transition("r1", accept())  # type: ignore[arg-type]
    store.record_external_refund(
        CAPTURE_ID, "S01-1234567-1234567-R000009", Decimal("5.00"), "USD", "AmazonA-ZRefund", at=T0
    )
    known = store.known_refunds(CAPTURE_ID)
    assert known is not None
    assert known.refund_ids == {"r1"}
    assert known.amazon_refund_ids == {R1, "S01-1234567-1234567-R000009"}
    assert known.available == Decimal("85.00")


def test_later_refunds_reserve_on_the_existing_ledger(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund("r1", "30.00"), seed())
    store.create_refund_with_reservation(refund("r2", "20.00"))
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    assert (ledger.available, ledger.refund_ids) == (Decimal("50.00"), ("r1", "r2"))


def test_unknown_capture_without_capture_details_raises_ledger_not_found(store: RefundStore) -> None:
    with pytest.raises(LedgerNotFound):
        store.create_refund_with_reservation(refund())
    assert store.get_refund("ord-1001-r1") is None


def test_same_refund_id_again_raises_already_exists_with_the_stored_refund(store: RefundStore) -> None:
    first = store.create_refund_with_reservation(refund(amount="10.00"), seed())
    with pytest.raises(RefundAlreadyExists) as exists:
        store.create_refund_with_reservation(refund(amount="15.00"), seed())
    assert exists.value.existing.request_fingerprint == first.request_fingerprint
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and ledger.available == Decimal("90.00")


def test_replay_after_the_capture_was_used_up_still_reports_already_exists(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(amount="100.00"), seed("100.00"))
    with pytest.raises(RefundAlreadyExists):
        store.create_refund_with_reservation(refund(amount="100.00"), seed("100.00"))


def test_overdrawing_refund_is_refused_and_not_stored(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund("r1", "90.00"), seed("100.00"))
    with pytest.raises(RefundExceedsCapture) as refused:
        store.create_refund_with_reservation(refund("r2", "10.01"))
    assert refused.value.available == Decimal("10.00")
    assert store.get_refund("r2") is None


def test_first_refund_larger_than_the_capture_is_refused(store: RefundStore) -> None:
    with pytest.raises(RefundExceedsCapture):
        store.create_refund_with_reservation(refund(amount="100.01"), seed("100.00"))
    assert store.get_ledger(CAPTURE_ID) is None


def test_refund_in_another_currency_than_the_capture_is_refused(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund("r1", "10.00"), seed())
    with pytest.raises(CurrencyMismatch):
        store.create_refund_with_reservation(refund("r2", "10.00", currency_code="EUR"))


def test_over_refund_allowance_is_available_only_when_the_seed_enables_it(store: RefundStore) -> None:
    allowing = LedgerSeed(CAPTURE_ID, "A1EXAMPLE", "USD", Decimal("100.00"), allow_over_refund=True)
    store.create_refund_with_reservation(refund(amount="115.00"), allowing)
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and ledger.available == 0


# --- transitions ----------------------------------------------------------------------------------------


def test_happy_path_ends_completed_with_the_amount_completed_on_the_ledger(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(amount="12.50"), seed("100.00"))
    store.transition("ord-1001-r1", accept())  # type: ignore[arg-type]
    done = store.transition("ord-1001-r1", complete()).refund  # type: ignore[arg-type]
    assert store.get_refund("ord-1001-r1") == done
    assert [h.to for h in done.history] == [
        RefundStatus.REQUESTED,
        RefundStatus.PENDING,
        RefundStatus.COMPLETED,
    ]
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    assert (ledger.in_flight, ledger.completed, ledger.available) == (
        Decimal(0),
        Decimal("12.50"),
        Decimal("87.50"),
    )


def test_each_stored_change_increments_the_version(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(), seed())
    assert store.transition("ord-1001-r1", accept()).refund.version == 2  # type: ignore[arg-type]


def test_a_transition_that_changes_nothing_writes_nothing(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(), seed())
    store.transition("ord-1001-r1", accept())  # type: ignore[arg-type]
    again = store.transition("ord-1001-r1", accept(5))  # type: ignore[arg-type]
    assert not again.changed
    stored = store.get_refund("ord-1001-r1")
    assert stored is not None and stored.version == 2


def test_refusal_fails_the_refund_and_releases_its_reservation_together(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(amount="40.00"), seed("100.00"))
    failed = store.transition(
        "ord-1001-r1", lambda r: apply_observation(r, PermanentlyRefused(1, "CaptureNotRefundable"), at=at(1))
    ).refund
    assert failed.status is RefundStatus.FAILED
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and (ledger.in_flight, ledger.available) == (Decimal(0), Decimal("100.00"))


def test_apply_on_a_stale_version_raises_version_conflict(store: RefundStore) -> None:
    created = store.create_refund_with_reservation(refund(), seed())
    store.transition("ord-1001-r1", accept())  # type: ignore[arg-type]
    stale = apply_observation(created, PermanentlyRefused(1, "CaptureNotRefundable"), at=at(3))
    with pytest.raises(VersionConflict):
        store.apply(created, stale.refund, stale.effect)


def test_stale_release_does_not_touch_the_ledger(store: RefundStore) -> None:
    created = store.create_refund_with_reservation(refund(amount="40.00"), seed("100.00"))
    store.transition("ord-1001-r1", accept())  # type: ignore[arg-type]
    stale = apply_observation(created, PermanentlyRefused(1, "CaptureNotRefundable"), at=at(3))
    with pytest.raises(VersionConflict):
        store.apply(created, stale.refund, stale.effect)
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and ledger.available == Decimal("60.00")


def test_transition_re_reads_and_re_applies_after_a_concurrent_change(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(), seed())
    seen: list[RefundStatus] = []

    def complete_while_someone_else_accepts(current: Refund) -> Transition:
        seen.append(current.status)
        if len(seen) == 1:  # another writer stores the Refund answer between our read and our write
            store.transition("ord-1001-r1", accept())  # type: ignore[arg-type]
        return apply_observation(
            current, AttemptOutcome(AttemptState.COMPLETED, "ipn:n1", amazon_refund_id=R1), at=at(5)
        )

    result = store.transition("ord-1001-r1", complete_while_someone_else_accepts)
    assert seen == [RefundStatus.REQUESTED, RefundStatus.PENDING]
    assert [h.to for h in result.refund.history] == [
        RefundStatus.REQUESTED,
        RefundStatus.PENDING,
        RefundStatus.COMPLETED,
    ]


def test_transition_of_an_unknown_refund_raises_not_found(store: RefundStore) -> None:
    with pytest.raises(RefundNotStored):
        store.transition("nope", accept())  # type: ignore[arg-type]


def test_release_effect_is_never_applied_twice_by_a_replayed_apply(store: RefundStore) -> None:
    created = store.create_refund_with_reservation(refund(amount="40.00"), seed("100.00"))
    failed = apply_observation(created, PermanentlyRefused(1, "CaptureNotRefundable"), at=at(1))
    store.apply(created, failed.refund, failed.effect)
    with pytest.raises(VersionConflict):
        store.apply(created, failed.refund, LedgerEffect(EffectKind.RELEASE, "ord-1001-r1", Decimal("40.00")))
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and ledger.available == Decimal("100.00")


# --- open refunds ---------------------------------------------------------------------------------------


def open_and_done(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund("r-old", "1.00", created=T0), seed())
    store.create_refund_with_reservation(refund("r-new", "1.00", created=at(600)))
    store.create_refund_with_reservation(refund("r-pending", "1.00", created=at(300)))
    store.transition("r-pending", lambda r: apply_observation(r, AttemptAccepted(1, R1), at=at(301)))
    store.create_refund_with_reservation(refund("r-done", "1.00", created=at(100)))
    store.transition("r-done", lambda r: apply_observation(r, PermanentlyRefused(1, "X"), at=at(101)))


def test_list_open_returns_open_refunds_oldest_first_without_final_ones(store: RefundStore) -> None:
    open_and_done(store)
    assert [r.refund_id for r in store.list_open()] == ["r-old", "r-pending", "r-new"]


def test_list_open_filters_by_status(store: RefundStore) -> None:
    open_and_done(store)
    assert [r.refund_id for r in store.list_open(status=RefundStatus.PENDING)] == ["r-pending"]


def test_list_open_filters_refunds_not_updated_since(store: RefundStore) -> None:
    open_and_done(store)
    assert [r.refund_id for r in store.list_open(older_than=at(301))] == ["r-old"]


def test_list_open_stops_at_the_limit(store: RefundStore) -> None:
    open_and_done(store)
    assert [r.refund_id for r in store.list_open(limit=2)] == ["r-old", "r-pending"]


# --- IPN dedupe -----------------------------------------------------------------------------------------


def test_an_ipn_is_recorded_once(store: RefundStore) -> None:
    first = store.record_ipn_once("P01-0000000-0000000-000001", timedelta(days=15), now=T0)
    again = store.record_ipn_once("P01-0000000-0000000-000001", timedelta(days=15), now=at(60))
    assert (first, again) == (True, False)


def test_an_expired_ipn_record_not_yet_deleted_counts_as_absent(store: RefundStore) -> None:
    store.record_ipn_once("P01-1", timedelta(seconds=10), now=T0)
    assert store.record_ipn_once("P01-1", timedelta(seconds=10), now=at(11))


# --- external refunds -----------------------------------------------------------------------------------


def test_external_refund_is_recorded_once_by_amazon_refund_id(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(amount="10.00"), seed("100.00"))
    first = store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("25.00"), "USD", "AmazonA-ZRefund", at=T0
    )
    again = store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("25.00"), "USD", "AmazonA-ZRefund", at=T0
    )
    ledger = store.get_ledger(CAPTURE_ID)
    assert (first, again) == (True, False)
    assert ledger is not None and (ledger.external, ledger.available) == (Decimal("25.00"), Decimal("65.00"))


def test_overdrawing_external_refund_is_recorded_and_blocks_new_reservations(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund("r1", "80.00"), seed("100.00"))
    store.record_external_refund(CAPTURE_ID, "S01-X-R9", Decimal("50.00"), "USD", "AmazonA-ZRefund", at=T0)
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and ledger.available == Decimal("-30.00")
    with pytest.raises(RefundExceedsCapture):
        store.create_refund_with_reservation(refund("r2", "0.01"))


def test_external_refund_on_an_unseen_capture_opens_its_ledger(store: RefundStore) -> None:
    assert store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("5.00"), "USD", "AmazonA-ZRefund", at=T0, ledger_seed=seed()
    )
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and ledger.external == Decimal("5.00")


def external_states(store: RefundStore) -> dict[str, str | None]:
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    return {e.amazon_refund_id: e.state for e in ledger.external_refunds}


def test_a_pending_external_refund_moves_to_completed_once_and_stays_counted(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(amount="10.00"), seed("100.00"))
    store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("25.00"), "USD", "Untyped", at=T0, state="Pending"
    )

    first = store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Completed", at=at(5))
    again = store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Completed", at=at(6))
    declined_after = store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Declined", at=at(7))

    assert (first, again, declined_after) == (True, False, False)
    assert external_states(store) == {"S01-X-R9": "Completed"}
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and (ledger.external, ledger.available) == (Decimal("25.00"), Decimal("65.00"))


def test_a_pending_external_refund_declined_is_released_once(store: RefundStore) -> None:
    """Amazon's v2 refund states end in Refunded or Declined: a declined refund by others moved no money,
    so its amount is available again (in the same write, once however often it is applied), as a
    Declined external refund on a v1 capture never counted."""
    store.create_refund_with_reservation(refund(amount="10.00"), seed("100.00"))
    store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("25.00"), "USD", "Untyped", at=T0, state="Pending"
    )

    assert store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Declined", at=at(5))
    assert not store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Declined", at=at(6))
    assert not store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Completed", at=at(7))

    assert external_states(store) == {"S01-X-R9": "Declined"}
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and (ledger.external, ledger.available) == (Decimal("0.00"), Decimal("90.00"))


@pytest.mark.parametrize("state", ["Pending", "Refunded", "Open"])
def test_only_completed_and_declined_are_states_an_external_refund_moves_to(
    store: RefundStore, state: str
) -> None:
    store.create_refund_with_reservation(refund(amount="10.00"), seed("100.00"))
    store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("25.00"), "USD", "Untyped", at=T0, state="Pending"
    )
    assert not store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", state, at=at(5))
    assert external_states(store) == {"S01-X-R9": "Pending"}


def test_moving_an_external_refund_that_is_not_recorded_changes_nothing(store: RefundStore) -> None:
    assert not store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Completed", at=at(5))  # no ledger
    store.create_refund_with_reservation(refund(amount="10.00"), seed("100.00"))
    store.record_external_refund(CAPTURE_ID, "S01-X-R8", Decimal("5.00"), "USD", "Untyped", at=T0)
    assert not store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Completed", at=at(5))
    assert not store.update_external_refund_state(CAPTURE_ID, "S01-X-R8", "Completed", at=at(5))  # no state
    assert external_states(store) == {"S01-X-R8": None}


def already(amazon_refund_id: str, amount: str, refund_type: str, state: str) -> ReportedRefund:
    return ReportedRefund(amazon_refund_id, "ext", Decimal(amount), "USD", refund_type, state, CAPTURE_ID)


def test_external_refund_already_in_the_opening_balance_is_not_counted_twice(store: RefundStore) -> None:
    opening = replace(seed(), refunds=(already("S01-X-R9", "5.00", "AmazonA-ZRefund", "Completed"),))
    recorded = store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("5.00"), "USD", "AmazonA-ZRefund", at=T0, ledger_seed=opening
    )
    ledger = store.get_ledger(CAPTURE_ID)
    assert not recorded
    assert ledger is not None and ledger.external == Decimal("5.00")


def test_the_opening_records_every_refund_already_on_the_capture_with_its_type_and_state(
    store: RefundStore,
) -> None:
    opening = replace(
        seed(),
        refunds=(
            already("S01-X-R7", "5.00", "AmazonA-ZRefund", "Pending"),
            already("S01-X-R8", "9.00", "SellerInitiated", "Declined"),
        ),
    )
    assert store.record_external_refund(
        CAPTURE_ID,
        "S01-X-R9",
        Decimal("1.00"),
        "USD",
        "Chargeback",
        at=T0,
        state="Completed",
        ledger_seed=opening,
    )
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    assert (ledger.external, ledger.available) == (Decimal("6.00"), ledger.captured - Decimal("6.00"))
    assert sorted((e.amazon_refund_id, e.refund_type, e.state) for e in ledger.external_refunds) == [
        ("S01-X-R7", "AmazonA-ZRefund", "Pending"),
        ("S01-X-R8", "SellerInitiated", "Declined"),
        ("S01-X-R9", "Chargeback", "Completed"),
    ]


def test_an_unread_external_refund_of_an_older_ledger_is_filled_in_when_read(store: RefundStore) -> None:
    store.record_external_refund(
        CAPTURE_ID, "S01-X-R1", Decimal("1.00"), "USD", "SellerInitiated", at=T0, ledger_seed=seed()
    )
    store.client.update_item(  # as ledgers opened before opening read the capture's refunds stored them
        TableName=store.table_name,
        Key={"pk": {"S": f"CAPTURE#{CAPTURE_ID}"}, "sk": {"S": "LEDGER"}},
        UpdateExpression="SET externals.#r = :entry",
        ExpressionAttributeNames={"#r": "S01-X-R9"},
        ExpressionAttributeValues={
            ":entry": {
                "M": {"refund_type": {"S": "Opening"}, "recorded_at": {"S": "2024-05-01T12:00:00.000Z"}}
            }
        },
    )
    before = store.get_ledger(CAPTURE_ID)
    assert (
        before is not None
        and not next(e for e in before.external_refunds if e.amazon_refund_id == "S01-X-R9").is_read
    )
    assert store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("4.00"), "USD", "AmazonA-ZRefund", at=T0, state="Pending"
    )
    assert not store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("4.00"), "USD", "AmazonA-ZRefund", at=T0, state="Pending"
    )
    after = store.get_ledger(CAPTURE_ID)
    assert after is not None and after.external == Decimal("5.00")
    filled = next(e for e in after.external_refunds if e.amazon_refund_id == "S01-X-R9")
    assert (filled.amount, filled.refund_type, filled.state, filled.is_read) == (
        Decimal("4.00"),
        "AmazonA-ZRefund",
        "Pending",
        True,
    )


def test_external_refund_on_an_unknown_capture_without_seed_raises_ledger_not_found(
    store: RefundStore,
) -> None:
    with pytest.raises(LedgerNotFound):
        store.record_external_refund(CAPTURE_ID, "S01-X-R9", Decimal("5.00"), "USD", "AmazonA-ZRefund", at=T0)


# --- API v2 chargebacks (CHARGEBACK IPNs, per seller and charge permission) -------------------------------

PERMISSION = "S01-1234567-1234567"
CHARGE_LEDGER = f"v2:{CAPTURE_ID}"


def test_a_chargeback_is_recorded_once_per_id_with_its_first_notification_time(store: RefundStore) -> None:
    first = f"{PERMISSION}-B000001"
    assert store.record_chargeback("A1EXAMPLE", PERMISSION, first, at=at(10)) is True
    assert store.record_chargeback("A1EXAMPLE", PERMISSION, first, at=at(99)) is False  # redelivered
    assert store.record_chargeback("A1EXAMPLE", PERMISSION, f"{PERMISSION}-B000002", at=at(5)) is True

    found = store.chargebacks("A1EXAMPLE", PERMISSION)

    assert [(c.chargeback_id, c.notified_at) for c in found] == [
        (f"{PERMISSION}-B000002", at(5)), (first, at(10)),
    ]  # fmt: skip
    assert store.chargebacks("A2OTHERSELLER", PERMISSION) == ()
    assert store.chargebacks("A1EXAMPLE", "S01-7654321-7654321") == ()


def test_a_charge_ledger_keeps_its_permission_and_shows_the_chargebacks_on_it(store: RefundStore) -> None:
    opened = replace(seed(capture_id=CHARGE_LEDGER), charge_permission_id=PERMISSION)
    store.create_refund_with_reservation(replace(refund(capture_id=CAPTURE_ID), api=PaymentApi.V2), opened)
    store.record_chargeback("A1EXAMPLE", PERMISSION, f"{PERMISSION}-B000001", at=at(10))

    ledger = store.get_ledger(CHARGE_LEDGER)
    known = store.known_refunds(CHARGE_LEDGER)

    assert ledger is not None and ledger.charge_permission_id == PERMISSION
    assert [c.chargeback_id for c in ledger.chargebacks] == [f"{PERMISSION}-B000001"]
    assert known is not None and known.charge_permission_id == PERMISSION


def test_an_older_charge_ledger_is_told_its_permission_once(store: RefundStore) -> None:
    store.create_refund_with_reservation(
        replace(refund(capture_id=CAPTURE_ID), api=PaymentApi.V2), seed(capture_id=CHARGE_LEDGER)
    )
    assert (ledger := store.get_ledger(CHARGE_LEDGER)) is not None and ledger.charge_permission_id is None

    store.note_charge_permission(CHARGE_LEDGER, PERMISSION)
    store.note_charge_permission(CHARGE_LEDGER, "S01-0000000-0000000")  # the first one stays
    store.note_charge_permission("v2:S01-9999999-9999999-C000001", PERMISSION)  # no ledger: nothing made

    assert (ledger := store.get_ledger(CHARGE_LEDGER)) is not None
    assert ledger.charge_permission_id == PERMISSION
    assert store.get_ledger("v2:S01-9999999-9999999-C000001") is None
