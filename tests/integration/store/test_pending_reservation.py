"""Refunds stored without a reservation (the capture could not be looked up yet), reserved later."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from amazon_pay_refunds.adapters.dynamodb import (
    LedgerNotFound,
    RefundAlreadyExists,
    RefundExceedsCapture,
    RefundStore,
    VersionConflict,
)

from .support import CAPTURE_ID, refund, seed


def test_refund_without_reservation_is_stored_flagged_and_reserves_nothing(store: RefundStore) -> None:
    stored = store.create_refund_without_reservation(refund())
    assert store.get_refund(stored.refund_id) == stored
    assert stored.reservation_pending and stored.version == 1
    assert store.get_ledger(CAPTURE_ID) is None


def test_refund_without_reservation_cannot_replace_an_existing_refund(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(), seed())
    with pytest.raises(RefundAlreadyExists) as exists:
        store.create_refund_without_reservation(refund())
    assert not exists.value.existing.reservation_pending


def test_pending_reservation_is_taken_with_the_seed_and_the_flag_cleared_together(store: RefundStore) -> None:
    pending = store.create_refund_without_reservation(refund(amount="30.00"))
    reserved = store.reserve_pending_refund(pending, seed("100.00"))
    assert not reserved.reservation_pending and reserved.version == 2
    assert store.get_refund(pending.refund_id) == reserved
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and ledger.available == Decimal("70.00")


def test_pending_reservation_without_ledger_or_seed_raises_ledger_not_found(store: RefundStore) -> None:
    pending = store.create_refund_without_reservation(refund())
    with pytest.raises(LedgerNotFound):
        store.reserve_pending_refund(pending)
    assert store.get_refund(pending.refund_id) == pending


def test_pending_reservation_that_no_longer_fits_is_refused_and_stays_pending(store: RefundStore) -> None:
    pending = store.create_refund_without_reservation(refund("late", amount="30.00"))
    store.create_refund_with_reservation(refund("early", amount="80.00"), seed("100.00"))
    with pytest.raises(RefundExceedsCapture):
        store.reserve_pending_refund(pending)
    assert store.get_refund("late") == pending


def test_pending_reservation_on_a_stale_read_raises_version_conflict_and_reserves_nothing(
    store: RefundStore,
) -> None:
    pending = store.create_refund_without_reservation(refund(amount="30.00"))
    store.reserve_pending_refund(pending, seed("100.00"))
    with pytest.raises(VersionConflict):
        store.reserve_pending_refund(replace(pending, version=1), seed("100.00"))
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None and ledger.available == Decimal("70.00")
