"""v1 captures and v2 charges side by side: qualified ids, separate ledgers, the stored API, and the v2
refunds the ledger cannot explain (issue 14)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from amazon_pay_refunds.adapters.dynamodb import items
from amazon_pay_refunds.adapters.mws.models import CaptureDetails, Price
from amazon_pay_refunds.core.classification import UNTYPED_REFUND_TYPE
from amazon_pay_refunds.core.models import (
    ExternalRefund,
    PaymentApi,
    RefundStatus,
    parse_qualified_id,
    qualified_id,
)
from amazon_pay_refunds.ports import KnownRefunds
from amazon_pay_refunds.use_cases.capture_refunds import ambiguous_v2_refunded, untracked_v2_refunds
from tests.support.domain import new_refund
from tests.support.doubles import CAPTURE_ID, NOW, capture_details

SAME_ID = CAPTURE_ID  # v1 capture ids and v2 charge ids share one format


def test_a_capture_and_a_charge_with_the_same_id_have_different_ledger_keys() -> None:
    v1 = items.ledger_key(qualified_id(PaymentApi.V1, SAME_ID))
    v2 = items.ledger_key(qualified_id(PaymentApi.V2, SAME_ID))
    assert v1 == {"pk": f"CAPTURE#{SAME_ID}", "sk": "LEDGER"}
    assert v2 == {"pk": f"CHARGE#{SAME_ID}", "sk": "LEDGER"}
    assert items.ledger_id_of(v2) == f"v2:{SAME_ID}" and items.ledger_id_of(v1) == SAME_ID
    assert items.is_ledger_item(v2) and items.is_ledger_item(v1)


def test_qualified_ids_round_trip() -> None:
    for api in PaymentApi:
        assert parse_qualified_id(qualified_id(api, SAME_ID)) == (api, SAME_ID)


def test_a_v2_refund_keeps_its_api_through_the_store_and_names_its_charge() -> None:
    refund = replace(new_refund(), api=PaymentApi.V2)
    item = items.refund_to_item(refund)
    assert items.refund_from_item(item).api is PaymentApi.V2
    assert refund.ledger_id == f"v2:{refund.amazon_capture_id}"
    resource = refund.to_resource()
    assert resource["amazon_charge_id"] == refund.amazon_capture_id and "amazon_capture_id" not in resource


def test_a_v1_refund_is_stored_and_shown_as_before() -> None:
    refund = new_refund()
    assert "api" not in items.refund_to_item(refund)
    assert items.refund_from_item(items.refund_to_item(refund)).api is PaymentApi.V1
    assert refund.to_resource()["amazon_capture_id"] == refund.amazon_capture_id


def charge(refunded: str) -> CaptureDetails:
    details = capture_details("100.00")
    return replace(
        details,
        amazon_capture_id=qualified_id(PaymentApi.V2, SAME_ID),
        refunded_amount=Price(Decimal(refunded), "USD"),
    )


def test_a_v2_charges_refunded_amount_at_opening_is_external_and_untyped() -> None:
    found = untracked_v2_refunds(charge("30.00"), None)
    assert found is not None
    assert (found.amount, found.refund_type, found.state) == (
        Decimal("30.00"),
        UNTYPED_REFUND_TYPE,
        "Completed",
    )
    assert found.amazon_refund_id == "v2-refunded-30.00"
    assert untracked_v2_refunds(charge("0.00"), None) is None


def test_only_what_our_completed_refunds_and_recorded_externals_do_not_explain_is_new() -> None:
    ours = replace(new_refund("r1", "10.00"), api=PaymentApi.V2, status=RefundStatus.COMPLETED)
    pending = replace(new_refund("r2", "5.00"), api=PaymentApi.V2, status=RefundStatus.PENDING)
    known = KnownRefunds(
        refunds={"r1": ours, "r2": pending},
        externals=(
            ExternalRefund("v2-refunded-20.00", Decimal("10.00"), UNTYPED_REFUND_TYPE, NOW, "Completed"),
        ),
        available=Decimal("75.00"),
    )
    assert untracked_v2_refunds(charge("20.00"), known) is None
    later = untracked_v2_refunds(charge("32.00"), known)
    assert later is not None and later.amount == Decimal("12.00")


def test_a_v1_capture_is_never_counted_from_its_refunded_amount() -> None:
    v1 = replace(capture_details("100.00"), refunded_amount=Price(Decimal("30.00"), "USD"))
    assert untracked_v2_refunds(v1, None) is None


def test_an_unanswered_attempt_of_ours_is_not_taken_for_someone_elses_refund() -> None:
    """Found by the simulation (seed 93): Create Refund accepted but its answer unreadable, the refund then
    settled at Amazon; the reconciler's resend read refundedAmount, counted our own refund as someone
    else's and refused the refund (Failed) that Amazon had made. An attempt sent but unanswered may be
    what refundedAmount holds: resending it under its idempotency key creates nothing if Amazon made it."""
    unanswered = replace(new_refund("r3", "94.50"), api=PaymentApi.V2)
    assert unanswered.latest_attempt.amazon_refund_id is None
    known = KnownRefunds(refunds={"r3": unanswered}, externals=(), available=Decimal("5.50"))
    assert untracked_v2_refunds(charge("94.50"), known) is None
    beyond = untracked_v2_refunds(charge("99.00"), known)
    assert beyond is not None and beyond.amount == Decimal("4.50")
    never_sent = replace(unanswered, reservation_pending=True)
    held = untracked_v2_refunds(charge("94.50"), replace(known, refunds={"r3": never_sent}))
    assert held is not None and held.amount == Decimal("94.50")


def test_an_attempt_known_never_sent_explains_nothing_and_only_others_unanswered_are_ambiguous() -> None:
    unanswered = replace(new_refund("r3", "15.00"), api=PaymentApi.V2)
    fresh = replace(new_refund("r4", "25.00"), api=PaymentApi.V2)
    known = KnownRefunds(refunds={"r3": unanswered, "r4": fresh}, externals=(), available=Decimal("60.00"))
    unsent = frozenset({("r4", 1)})
    assert untracked_v2_refunds(charge("25.00"), known) is None  # r4 may be what Amazon refunded
    assert ambiguous_v2_refunded(charge("25.00"), known) == Decimal("25.00")
    found = untracked_v2_refunds(charge("25.00"), known, unsent=unsent)  # r4 was never sent: r3 at most
    assert found is not None and found.amount == Decimal("10.00")
    assert ambiguous_v2_refunded(charge("25.00"), known, unsent=unsent) == Decimal("15.00")
    alone = replace(known, refunds={"r4": fresh})
    everything = untracked_v2_refunds(charge("25.00"), alone, unsent=unsent)
    assert everything is not None and everything.amount == Decimal("25.00")  # others' refund
    assert ambiguous_v2_refunded(charge("25.00"), alone, unsent=unsent) == Decimal(0)
    assert ambiguous_v2_refunded(charge("50.00"), known, unsent=unsent) == Decimal("15.00")  # at most r3's


def by_id(amazon_refund_id: str, amount: str, state: str) -> ExternalRefund:
    return ExternalRefund(amazon_refund_id, Decimal(amount), UNTYPED_REFUND_TYPE, NOW, state)


def test_a_refund_by_others_recorded_by_id_explains_refunded_amount_only_once_completed() -> None:
    """Recorded by its id while RefundInitiated it is not in refundedAmount: a Pending or Declined entry
    explains none of it (else a refund by others would hide inside another's amount); once Completed it
    explains its share, so refundedAmount never records it a second time."""
    known = KnownRefunds(
        refunds={}, externals=(by_id("S01-X-R1", "30.00", "Pending"),), available=Decimal("70.00")
    )
    other = untracked_v2_refunds(charge("20.00"), known)  # someone else's 20.00, already Refunded
    assert other is not None and other.amount == Decimal("20.00")
    settled = replace(known, externals=(by_id("S01-X-R1", "30.00", "Completed"),))
    assert untracked_v2_refunds(charge("30.00"), settled) is None
    declined = replace(known, externals=(by_id("S01-X-R1", "30.00", "Declined"),))
    still = untracked_v2_refunds(charge("30.00"), declined)
    assert still is not None and still.amount == Decimal("30.00")


def test_our_refund_read_completed_in_this_survey_explains_refunded_amount_before_it_is_recorded() -> None:
    pending = replace(new_refund("r1", "10.00"), api=PaymentApi.V2, status=RefundStatus.PENDING)
    known = KnownRefunds(refunds={"r1": pending}, externals=(), available=Decimal("90.00"))
    assert untracked_v2_refunds(charge("10.00"), known, completed_unrecorded=frozenset({"r1"})) is None
    counted = untracked_v2_refunds(charge("10.00"), known)  # not read: conservatively someone else's
    assert counted is not None and counted.amount == Decimal("10.00")


def test_a_remainder_of_the_same_refunded_total_is_recorded_under_its_own_id() -> None:
    """refundedAmount 30.00 (someone else's) read while our 10.00 attempt was sent but unanswered: 20.00
    was recorded as `v2-refunded-30.00`. The attempt then turned out never made (refused on resend, its
    reservation released): the same total now leaves 10.00 unexplained, which the first entry's id must
    not swallow (it would be counted 10.00 short, the unsafe side)."""
    refused = replace(new_refund("r1", "10.00"), api=PaymentApi.V2, status=RefundStatus.FAILED)
    known = KnownRefunds(
        refunds={"r1": refused},
        externals=(
            ExternalRefund("v2-refunded-30.00", Decimal("20.00"), UNTYPED_REFUND_TYPE, NOW, "Completed"),
        ),
        available=Decimal("80.00"),
    )
    remainder = untracked_v2_refunds(charge("30.00"), known)
    assert remainder is not None
    assert (remainder.amazon_refund_id, remainder.amount) == ("v2-refunded-30.00+10.00", Decimal("10.00"))


def test_an_unanswered_attempt_explains_only_whole_amounts_of_what_is_unexplained() -> None:
    """refundedAmount holds whole refunds: 20.00 unexplained cannot include our unanswered 25.00, so it is
    someone else's; with a 5.00 and a 12.00 unanswered, at most 17.00 of 20.00 can be ours."""
    big = replace(new_refund("r1", "25.00"), api=PaymentApi.V2)
    known = KnownRefunds(refunds={"r1": big}, externals=(), available=Decimal("75.00"))
    found = untracked_v2_refunds(charge("20.00"), known)
    assert found is not None and found.amount == Decimal("20.00")
    assert ambiguous_v2_refunded(charge("20.00"), known) == Decimal(0)
    assert untracked_v2_refunds(charge("25.00"), known) is None  # may be r1 itself
    assert ambiguous_v2_refunded(charge("25.00"), known) == Decimal("25.00")
    small = {
        "r2": replace(new_refund("r2", "5.00"), api=PaymentApi.V2),
        "r3": replace(new_refund("r3", "12.00"), api=PaymentApi.V2),
    }
    two = replace(known, refunds=small)
    rest = untracked_v2_refunds(charge("20.00"), two)
    assert rest is not None and rest.amount == Decimal("3.00")
    assert ambiguous_v2_refunded(charge("20.00"), two) == Decimal("17.00")


def test_beyond_the_exact_bound_unanswered_attempts_may_explain_everything_unexplained() -> None:
    """12 unanswered 5.00 attempts explain whole amounts only (10.00 of 12.00); with 13, the bound is their
    sum, so all of it may be ours: less is recorded as others', and a new attempt is held rather than sent."""
    twelve = {f"r{i}": replace(new_refund(f"r{i}", "5.00"), api=PaymentApi.V2) for i in range(12)}
    known = KnownRefunds(refunds=twelve, externals=(), available=Decimal("40.00"))
    exact = untracked_v2_refunds(charge("12.00"), known)
    assert exact is not None and exact.amount == Decimal("2.00")
    thirteen = {**twelve, "r12": replace(new_refund("r12", "5.00"), api=PaymentApi.V2)}
    bounded = replace(known, refunds=thirteen)
    assert untracked_v2_refunds(charge("12.00"), bounded) is None
    assert ambiguous_v2_refunded(charge("12.00"), bounded) == Decimal("12.00")
