"""Amazon Pay API v2 refund IPNs through the handler, on a moto-emulated refunds table (issue 14): the
message names only the refund, so the handler reads it with Get Refund, whose answer names its charge, and
looks for the attempt on that charge's ledger. Refunds by others are recorded on the charge by their id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import (
    AmazonRefundStatus,
    CaptureDetails,
    CaptureStatus,
    Price,
    RefundDetails,
)
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import AttemptAccepted, apply_observation, request_refund
from amazon_pay_refunds.core.models import AttemptState, PaymentApi, Refund, RefundStatus, request_fingerprint
from tests.support.ipn_signing import LOCAL_PREFIX, NOW, SELLER, Signer, api_event

from .conftest import Endpoint

CHARGE = "S01-7654321-7654321-C000001"
OTHER_CHARGE = "S01-7654321-7654321-C000002"
OURS = "S01-7654321-7654321-R000001"
THEIRS = "S01-7654321-7654321-R000009"
V2_STATES = {"Pending": "Pending", "Refunded": "Completed", "Declined": "Declined"}


def v2(amazon_id: str) -> str:
    return f"v2:{amazon_id}"


@dataclass
class AmazonV2:
    """Get Refund and Get Charge as the v2 adapter answers them through the router (qualified ids)."""

    refunds: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (charge, amount, state)
    refunded: dict[str, str] = field(default_factory=dict)  # charge -> refundedAmount
    calls: list[str] = field(default_factory=list)

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        self.calls.append(f"GetRefund {amazon_refund_id}")
        charge, amount, state = self.refunds[amazon_refund_id.removeprefix("v2:")]
        return RefundDetails(
            amazon_refund_id=amazon_refund_id.removeprefix("v2:"),
            refund_reference_id="",
            refund_type="Untyped",
            refund_amount=Price(Decimal(amount), "USD"),
            fee_refunded=None,
            creation_timestamp=NOW,
            refund_status=AmazonRefundStatus(V2_STATES[state], NOW, None, None),
            seller_refund_note=None,
            soft_descriptor=None,
            converted_amount=None,
            conversion_rate=None,
            amazon_capture_id=v2(charge),
        )

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        self.calls.append(f"GetCharge {amazon_capture_id}")
        charge = amazon_capture_id.removeprefix("v2:")
        return CaptureDetails(
            amazon_capture_id=amazon_capture_id,
            capture_reference_id="",
            capture_amount=Price(Decimal("100.00"), "USD"),
            refunded_amount=Price(Decimal(self.refunded.get(charge, "0.00")), "USD"),
            capture_fee=None,
            capture_status=CaptureStatus("Completed", None, None),
            id_list=(),
            creation_timestamp=datetime(2024, 4, 1, tzinfo=UTC),
            seller_capture_note=None,
            soft_descriptor=None,
            converted_amount=None,
            conversion_rate=None,
        )

    def refund(self, *args: Any, **kwargs: Any) -> RefundDetails:
        raise AmazonPayError("NotExpected", "the IPN handler never creates refunds")


class V2Ipns:
    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.sent = 0

    def refund_event(self, amazon_refund_id: str, notification_id: str | None = None) -> dict[str, Any]:
        self.sent += 1
        message = json.dumps(
            {
                "MerchantID": SELLER,
                "ObjectType": "REFUND",
                "ObjectId": amazon_refund_id,
                "ChargePermissionId": "S01-7654321-7654321",
                "NotificationType": "STATE_CHANGE",
                "NotificationId": notification_id or f"n-v2-{self.sent}",
                "NotificationVersion": "V2",
            }
        )
        return api_event(self.signer.envelope(message))


@pytest.fixture
def amazon() -> AmazonV2:
    return AmazonV2()


@pytest.fixture
def ipns(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint, amazon: AmazonV2) -> V2Ipns:
    signer = Signer.local()
    monkeypatch.setenv("REFUNDS_LOCAL_SNS_CA_PEM", signer.ca_pem)
    monkeypatch.setenv("REFUNDS_LOCAL_SNS_CERT_URL_PREFIX", LOCAL_PREFIX)
    endpoint.install(signer.fetch, amazon_pay=amazon)
    return V2Ipns(signer)


def v2_refund(
    store: RefundStore, refund_id: str = "v2-ord-1", *, charge: str = CHARGE, amount: str = "20.00"
) -> Refund:
    """A v2 refund as POST /refunds stores it: Requested, attempt 1 sent but unanswered, reserved."""
    created = request_refund(
        refund_id=refund_id,
        seller_id=SELLER,
        amazon_capture_id=charge,
        amount=Decimal(amount),
        currency_code="USD",
        seller_refund_note=None,
        soft_descriptor=None,
        metadata={},
        request_fingerprint=request_fingerprint({"refund_id": refund_id}),
        at=NOW,
        api=PaymentApi.V2,
    ).refund
    return store.create_refund_with_reservation(
        created, LedgerSeed(v2(charge), SELLER, "USD", Decimal("100.00"))
    )


def answered(store: RefundStore, refund: Refund, amazon_refund_id: str = OURS) -> Refund:
    """Create Refund's answer recorded: attempt 1 Pending with Amazon's refund id."""
    accepted = AttemptAccepted(1, amazon_refund_id, AttemptState.PENDING, None)
    return store.transition(refund.refund_id, lambda r: apply_observation(r, accepted, at=NOW)).refund


def ledger_of(store: RefundStore, charge: str = CHARGE) -> Any:
    ledger = store.get_ledger(v2(charge))
    assert ledger is not None
    return ledger


def externals(store: RefundStore, charge: str = CHARGE) -> list[tuple[str, str, str | None]]:
    return [(e.amazon_refund_id, str(e.amount), e.state) for e in ledger_of(store, charge).external_refunds]


# --- ours -------------------------------------------------------------------------------------------------


def test_our_open_refund_is_found_through_its_charge_and_completed(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    answered(store, v2_refund(store))
    amazon.refunds[OURS] = (CHARGE, "20.00", "Refunded")

    answer = endpoint.post(ipns.refund_event(OURS))

    assert (answer.status, answer.reason) == (200, "processed")
    stored = store.get_refund("v2-ord-1")
    assert stored is not None and stored.status is RefundStatus.COMPLETED
    assert externals(store) == []


def test_our_refund_already_final_is_a_duplicate_and_changes_nothing(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    answered(store, v2_refund(store))
    amazon.refunds[OURS] = (CHARGE, "20.00", "Refunded")
    endpoint.post(ipns.refund_event(OURS))
    before = store.get_refund("v2-ord-1")

    answer = endpoint.post(ipns.refund_event(OURS))  # a later IPN about it (another NotificationId)

    assert (answer.status, answer.reason) == (200, "duplicate")
    assert store.get_refund("v2-ord-1") == before
    assert externals(store) == []


def test_a_refund_unknown_while_our_attempt_on_that_charge_is_unanswered_is_redelivered(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    v2_refund(store)  # Create Refund sent, its answer (naming Amazon's refund id) not recorded
    amazon.refunds[OURS] = (CHARGE, "20.00", "Pending")

    answer = endpoint.post(ipns.refund_event(OURS))

    assert (answer.status, answer.reason) == (503, "v2_refund_not_placed_yet")
    assert externals(store) == []


def test_an_unanswered_attempt_on_another_charge_does_not_hold_a_refund_by_others(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    v2_refund(store, charge=OTHER_CHARGE)  # unanswered, but on another charge
    answered(store, v2_refund(store, "v2-ord-2"))
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Pending")

    answer = endpoint.post(ipns.refund_event(THEIRS))

    assert (answer.status, answer.reason) == (200, "external_refund_recorded")
    assert externals(store) == [(THEIRS, "30.00", "Pending")]


# --- refunds by others ----------------------------------------------------------------------------------


def test_a_pending_refund_by_others_is_recorded_by_its_id_and_counted_once(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    answered(store, v2_refund(store))
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Pending")

    first = endpoint.post(ipns.refund_event(THEIRS))
    again = endpoint.post(ipns.refund_event(THEIRS))

    assert [(a.status, a.reason) for a in (first, again)] == [
        (200, "external_refund_recorded"),
        (200, "external_refund_duplicate"),
    ]
    assert externals(store) == [(THEIRS, "30.00", "Pending")]
    ledger = ledger_of(store)
    assert (ledger.external, ledger.available) == (Decimal("30.00"), Decimal("50.00"))


def test_a_pending_refund_by_others_on_a_charge_without_a_ledger_opens_it_from_get_charge(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Pending")
    amazon.refunded[CHARGE] = "10.00"  # another refund by others, already Refunded

    answer = endpoint.post(ipns.refund_event(THEIRS))

    assert (answer.status, answer.reason) == (200, "external_refund_recorded")
    assert sorted(externals(store)) == [
        (THEIRS, "30.00", "Pending"),
        ("v2-refunded-10.00", "10.00", "Completed"),
    ]
    assert ledger_of(store).available == Decimal("60.00")
    # Get Refund again after Get Charge: still RefundInitiated, so not in the refundedAmount just read.
    assert amazon.calls == [f"GetRefund v2:{THEIRS}", f"GetCharge v2:{CHARGE}", f"GetRefund v2:{THEIRS}"]


def test_a_recorded_refund_by_others_that_settles_moves_to_completed_and_is_not_counted_again(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    answered(store, v2_refund(store))
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Pending")
    endpoint.post(ipns.refund_event(THEIRS))
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Refunded")
    amazon.refunded[CHARGE] = "30.00"

    settled = endpoint.post(ipns.refund_event(THEIRS))
    again = endpoint.post(ipns.refund_event(THEIRS))

    assert [(a.status, a.reason) for a in (settled, again)] == [
        (200, "external_refund_settled"),
        (200, "external_refund_duplicate"),
    ]
    assert externals(store) == [(THEIRS, "30.00", "Completed")]
    assert ledger_of(store).available == Decimal("50.00")


def test_a_recorded_refund_by_others_that_amazon_declines_is_no_longer_counted(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    answered(store, v2_refund(store))
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Pending")
    endpoint.post(ipns.refund_event(THEIRS))
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Declined")

    answer = endpoint.post(ipns.refund_event(THEIRS))

    assert (answer.status, answer.reason) == (200, "external_refund_settled")
    assert externals(store) == [(THEIRS, "30.00", "Declined")]
    ledger = ledger_of(store)
    assert (ledger.external, ledger.available) == (Decimal("0.00"), Decimal("80.00"))


def test_a_refund_by_others_first_seen_refunded_is_explained_by_the_charge_survey(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    answered(store, v2_refund(store))
    amazon.refunds[OURS] = (CHARGE, "20.00", "Pending")
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Refunded")
    amazon.refunded[CHARGE] = "30.00"

    first = endpoint.post(ipns.refund_event(THEIRS))
    again = endpoint.post(ipns.refund_event(THEIRS))

    assert [(a.status, a.reason) for a in (first, again)] == [
        (200, "external_refund_surveyed"),
        (200, "external_refund_surveyed"),
    ]
    assert externals(store) == [("v2-refunded-30.00", "30.00", "Completed")]  # once
    assert ledger_of(store).available == Decimal("50.00")


def test_a_refund_by_others_refunded_on_a_charge_without_a_ledger_is_left_to_refunded_amount(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Refunded")

    answer = endpoint.post(ipns.refund_event(THEIRS))

    assert (answer.status, answer.reason) == (200, "external_refund_no_ledger")
    assert store.get_ledger(v2(CHARGE)) is None


def test_a_refund_by_others_declined_before_it_was_recorded_is_only_acknowledged(
    endpoint: Endpoint, ipns: V2Ipns, store: RefundStore, amazon: AmazonV2
) -> None:
    answered(store, v2_refund(store))
    amazon.refunds[THEIRS] = (CHARGE, "30.00", "Declined")

    answer = endpoint.post(ipns.refund_event(THEIRS))

    assert (answer.status, answer.reason) == (200, "external_refund_declined")
    assert externals(store) == []
