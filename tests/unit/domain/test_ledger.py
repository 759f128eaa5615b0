from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amazon_pay_refunds.core.classification import ReportedRefund
from amazon_pay_refunds.core.ledger import (
    CurrencyMismatch,
    EffectKind,
    LedgerEffect,
    LedgerSeed,
    RefundExceedsCapture,
    apply_effect,
    complete,
    open_ledger,
    record_external,
    release,
    reserve,
)
from amazon_pay_refunds.core.models import CaptureLedger
from tests.support.domain import CAPTURE_ID, T0


def ledger(captured: str = "100.00", currency: str = "USD", *, over: bool = False) -> CaptureLedger:
    seed = LedgerSeed(CAPTURE_ID, "A1EXAMPLE", currency, Decimal(captured), allow_over_refund=over)
    return open_ledger(seed, T0)


def test_reservation_moves_amount_from_available_to_in_flight() -> None:
    after = reserve(ledger(), "r1", Decimal("30.00"), "USD")
    assert (after.in_flight, after.available) == (Decimal("30.00"), Decimal("70.00"))


def test_reservation_of_exactly_the_available_amount_is_accepted() -> None:
    assert reserve(ledger(), "r1", Decimal("100.00"), "USD").available == 0


def test_reservation_beyond_available_is_refused_with_what_is_left() -> None:
    partly = reserve(ledger(), "r1", Decimal("60.00"), "USD")
    with pytest.raises(RefundExceedsCapture) as refused:
        reserve(partly, "r2", Decimal("40.01"), "USD")
    assert refused.value.available == Decimal("40.00")


def test_reservation_in_another_currency_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        reserve(ledger(), "r1", Decimal("1.00"), "EUR")


def test_over_refund_allowance_applies_only_when_enabled() -> None:
    with pytest.raises(RefundExceedsCapture):
        reserve(ledger(), "r1", Decimal("115.00"), "USD")
    assert reserve(ledger(over=True), "r1", Decimal("115.00"), "USD").available == 0


def test_over_refund_allowance_is_capped_at_75_usd() -> None:
    assert ledger("1000.00", over=True).available == Decimal("1075.00")


def test_completion_moves_in_flight_to_completed_without_changing_available() -> None:
    after = complete(reserve(ledger(), "r1", Decimal("30.00"), "USD"), "r1")
    assert (after.in_flight, after.completed, after.available) == (
        Decimal(0),
        Decimal("30.00"),
        Decimal("70.00"),
    )


def test_release_makes_the_reservation_available_again() -> None:
    after = release(reserve(ledger(), "r1", Decimal("30.00"), "USD"), "r1")
    assert (after.in_flight, after.available) == (Decimal(0), Decimal("100.00"))


def test_a_completed_refund_cannot_be_released() -> None:
    done = complete(reserve(ledger(), "r1", Decimal("30.00"), "USD"), "r1")
    with pytest.raises(ValueError, match="no in-flight reservation"):
        release(done, "r1")


def test_external_refund_reduces_available() -> None:
    after = record_external(ledger(), "S01-X-R1", Decimal("25.00"), "AmazonA-ZRefund", T0)
    assert (after.external, after.available) == (Decimal("25.00"), Decimal("75.00"))


def test_external_refund_is_counted_once_per_amazon_refund_id() -> None:
    once = record_external(ledger(), "S01-X-R1", Decimal("25.00"), "AmazonA-ZRefund", T0)
    assert record_external(once, "S01-X-R1", Decimal("25.00"), "AmazonA-ZRefund", T0) == once


def test_overdrawing_external_refund_is_recorded_and_later_reservations_refuse() -> None:
    reserved = reserve(ledger(), "r1", Decimal("80.00"), "USD")
    after = record_external(reserved, "S01-X-R1", Decimal("50.00"), "AmazonA-ZRefund", T0)
    assert after.available == Decimal("-30.00")
    with pytest.raises(RefundExceedsCapture):
        reserve(after, "r2", Decimal("0.01"), "USD")


def reported(refund_id: str, amount: str, refund_type: str, state: str) -> ReportedRefund:
    return ReportedRefund(refund_id, "ext-1", Decimal(amount), "USD", refund_type, state, CAPTURE_ID)


def test_opening_counts_pending_and_completed_refunds_amazon_already_reports_but_not_declined_ones() -> None:
    already = (
        reported("S01-X-R0", "10.00", "SellerInitiated", "Completed"),
        reported("S01-X-R1", "25.00", "AmazonA-ZRefund", "Pending"),  # not in Amazon's RefundedAmount
        reported("S01-X-R2", "40.00", "SellerInitiated", "Declined"),
    )
    seed = LedgerSeed(CAPTURE_ID, "A1", "USD", Decimal("100.00"), already)
    opened = open_ledger(seed, T0)
    assert (opened.external, opened.available) == (Decimal("35.00"), Decimal("65.00"))
    assert [(e.amazon_refund_id, e.refund_type, e.state) for e in opened.external_refunds] == [
        ("S01-X-R0", "SellerInitiated", "Completed"),
        ("S01-X-R1", "AmazonA-ZRefund", "Pending"),
        ("S01-X-R2", "SellerInitiated", "Declined"),
    ]
    assert all(e.is_read for e in opened.external_refunds)
    again = record_external(opened, "S01-X-R0", Decimal("10.00"), "SellerInitiated", T0, "Completed")
    assert again.external == Decimal("35.00")


def test_opening_refuses_a_refund_in_another_currency_than_the_capture() -> None:
    other = replace(reported("S01-X-R0", "10.00", "SellerInitiated", "Completed"), currency_code="EUR")
    with pytest.raises(CurrencyMismatch):
        open_ledger(LedgerSeed(CAPTURE_ID, "A1", "USD", Decimal("100.00"), (other,)), T0)


def test_capture_resource_reports_buckets_as_strings() -> None:
    state = complete(reserve(ledger("50.00"), "r1", Decimal("20.00"), "USD"), "r1")
    state = reserve(state, "r2", Decimal("5.00"), "USD")
    resource = state.to_resource()
    assert {k: resource[k] for k in ("captured", "completed", "in_flight", "external", "available")} == {
        "captured": "50.00",
        "completed": "20.00",
        "in_flight": "5.00",
        "external": "0.00",
        "available": "25.00",
    }
    assert [r["refund_id"] for r in resource["refunds"]] == ["r1", "r2"]


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("80.00"), places=2)
operations = st.lists(
    st.tuples(st.sampled_from(["reserve", "complete", "release", "external"]), amounts), max_size=40
)


def run(ops: list[tuple[str, Decimal]], *, externals: bool) -> list[CaptureLedger]:
    """Every ledger state along `ops` (invalid completions/releases skipped)."""
    state = ledger()
    states = [state]
    for number, (kind, amount) in enumerate(ops):
        in_flight = [r.refund_id for r in state.refunds if r.reservation == "in_flight"]
        if kind == "reserve":
            try:
                state = apply_effect(state, LedgerEffect(EffectKind.RESERVE, f"r{number}", amount), "USD")
            except RefundExceedsCapture:
                assert amount > state.available
        elif kind == "external":
            if externals:
                state = record_external(state, f"S01-X-R{number}", amount, "AmazonA-ZRefund", T0)
        elif in_flight:
            effect = EffectKind.COMPLETE if kind == "complete" else EffectKind.RELEASE
            state = apply_effect(state, LedgerEffect(effect, in_flight[0], Decimal(0)), "USD")
        states.append(state)
    return states


@given(operations)
def test_our_refunds_never_overdraw_the_capture(ops: list[tuple[str, Decimal]]) -> None:
    for state in run(ops, externals=False):
        assert state.in_flight + state.completed <= state.captured
        assert state.available >= 0


@given(operations)
def test_a_reservation_never_takes_more_than_was_available(ops: list[tuple[str, Decimal]]) -> None:
    states = run(ops, externals=True)
    for before, after in itertools.pairwise(states):
        reserved = after.in_flight + after.completed - before.in_flight - before.completed
        if reserved > 0:
            assert reserved <= before.available
            assert after.available >= 0
