"""(b) Locally-signed PaymentRefund IPNs drive a refund created through the store (CONTRACT §4, §5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.core.models import AttemptState, RefundStatus

from .conftest import CAPTURE_ID, Endpoint, create_refund
from .local_ipns import LocalIpns, amazon_refund_id, trust_local_authority

REFUND_ID = "ord-1001-r1"


@pytest.fixture
def ipns(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint, store: RefundStore) -> LocalIpns:
    create_refund(store, REFUND_ID)
    return trust_local_authority(monkeypatch, endpoint)


def status_of(store: RefundStore) -> RefundStatus:
    refund = store.get_refund(REFUND_ID)
    assert refund is not None
    return refund.status


def test_pending_then_completed_completes_the_refund_and_its_ledger(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore
) -> None:
    pending = endpoint.post(ipns.refund_event(REFUND_ID, "Pending"))
    assert (pending.status, pending.reason) == (200, "processed")
    assert status_of(store) is RefundStatus.PENDING

    completed = endpoint.post(ipns.refund_event(REFUND_ID, "Completed"))

    assert (completed.status, completed.reason) == (200, "processed")
    refund = store.get_refund(REFUND_ID)
    assert refund is not None
    assert refund.status is RefundStatus.COMPLETED
    assert [(a.state, a.amazon_refund_id) for a in refund.attempts] == [
        (AttemptState.COMPLETED, amazon_refund_id(REFUND_ID))
    ]
    assert [(h.from_, h.to) for h in refund.history] == [
        (None, RefundStatus.REQUESTED),
        (RefundStatus.REQUESTED, RefundStatus.PENDING),
        (RefundStatus.PENDING, RefundStatus.COMPLETED),
    ]
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    assert (ledger.completed, ledger.in_flight, ledger.available) == (
        Decimal("12.50"),
        Decimal(0),
        Decimal("87.50"),
    )


def test_declined_amazon_rejected_requires_manual_action(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore
) -> None:
    endpoint.post(ipns.refund_event(REFUND_ID, "Pending"))

    answer = endpoint.post(ipns.refund_event(REFUND_ID, "Declined", reason_code="AmazonRejected"))

    assert (answer.status, answer.reason) == (200, "processed")
    refund = store.get_refund(REFUND_ID)
    assert refund is not None
    assert (refund.status, refund.reason_code) == (RefundStatus.MANUAL_ACTION_REQUIRED, "AmazonRejected")
    assert refund.history[-1].declined  # published as Refund Declined by the stream publisher
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    assert ledger.in_flight == Decimal("12.50")  # money might still move: the reservation is held


def test_declined_processing_failure_schedules_a_retry(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore
) -> None:
    endpoint.post(ipns.refund_event(REFUND_ID, "Pending"))

    answer = endpoint.post(ipns.refund_event(REFUND_ID, "Declined", reason_code="ProcessingFailure"))

    assert (answer.status, answer.reason) == (200, "processed")
    refund = store.get_refund(REFUND_ID)
    assert refund is not None
    assert (refund.status, refund.reason_code) == (RefundStatus.RETRY_SCHEDULED, "ProcessingFailure")


def test_a_late_pending_after_completed_changes_nothing_that_matters(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore
) -> None:
    endpoint.post(ipns.refund_event(REFUND_ID, "Completed"))
    completed = store.get_refund(REFUND_ID)
    assert completed is not None and completed.status is RefundStatus.COMPLETED

    answer = endpoint.post(ipns.refund_event(REFUND_ID, "Pending"))

    assert answer.status == 200
    after = store.get_refund(REFUND_ID)
    assert after is not None
    assert (after.status, after.attempts, after.history) == (
        completed.status,
        completed.attempts,
        completed.history,
    )
    assert [o.state for o in after.late_observations] == [AttemptState.PENDING]  # kept for audit only


def test_duplicate_ipns_are_acknowledged_and_write_nothing(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore, dynamodb: Any
) -> None:
    event = ipns.refund_event(REFUND_ID, "Pending", notification_reference_id="nref-pending-1")
    endpoint.post(event)
    before = store.get_refund(REFUND_ID)
    items_before = dynamodb.scan(TableName="refunds-ipn")["Items"]

    redelivered = endpoint.post(event)
    # Amazon may also send the same notification again in a new SNS message.
    resent = endpoint.post(
        ipns.refund_event(REFUND_ID, "Pending", notification_reference_id="nref-pending-1")
    )

    assert (redelivered.status, redelivered.reason) == (200, "duplicate")
    assert (resent.status, resent.reason) == (200, "duplicate")
    after = store.get_refund(REFUND_ID)
    assert after == before and after is not None and after.version == before.version  # type: ignore[union-attr]
    assert dynamodb.scan(TableName="refunds-ipn")["Items"] == items_before


def test_an_ipn_of_another_seller_never_changes_our_refund(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore
) -> None:
    from tests.support.ipn_signing import OTHER_SELLER, OTHER_TOPIC

    answer = endpoint.post(
        ipns.refund_event(REFUND_ID, "Completed", seller_id=OTHER_SELLER, topic=OTHER_TOPIC)
    )

    assert answer.status == 200
    assert answer.reason.startswith("external_refund")
    assert status_of(store) is RefundStatus.REQUESTED


def test_a_sample_refund_ipn_is_acknowledged_and_not_applied(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore
) -> None:
    answer = endpoint.post(ipns.refund_event(REFUND_ID, "Completed", IsSample=True))

    assert (answer.status, answer.reason) == (200, "sample_ignored")
    assert status_of(store) is RefundStatus.REQUESTED


def test_a_live_ipn_never_changes_a_sandbox_deployment(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore
) -> None:
    answer = endpoint.post(ipns.refund_event(REFUND_ID, "Completed", release_environment="Live"))

    assert (answer.status, answer.reason) == (200, "release_environment_ignored")
    assert status_of(store) is RefundStatus.REQUESTED


def test_a_refund_ipn_signed_by_another_authority_is_refused(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore
) -> None:
    from tests.support.ipn_signing import Signer

    stranger = LocalIpns(Signer.local())  # same URL prefix and name, another CA
    answer = endpoint.post(stranger.refund_event(REFUND_ID, "Completed"))

    assert answer.status == 403
    assert status_of(store) is RefundStatus.REQUESTED
