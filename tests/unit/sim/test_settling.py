"""Refunds settle after settle_seconds (lazily, against the clock) and the capture follows."""

from __future__ import annotations

import pytest

from amazon_pay_sim import Simulator
from amazon_pay_sim.state import MwsError
from tests.support.sim import SETTLE_SECONDS, FakeClock, call, refund_params


@pytest.fixture
def capture_id(sim: Simulator) -> str:
    return sim.create_capture("100.00", "USD")


def refund_id(
    sim: Simulator, clock: FakeClock, capture_id: str, reference: str, amount: str = "10.00"
) -> str:
    answer = call(sim, clock, "Refund", refund_params(capture_id, reference, amount))
    assert answer.status == 200, answer.body
    return answer.field("AmazonRefundId") or ""


def refund_state(sim: Simulator, clock: FakeClock, amazon_refund_id: str) -> str | None:
    return call(sim, clock, "GetRefundDetails", {"AmazonRefundId": amazon_refund_id}).field("State")


def test_a_refund_stays_pending_before_settle_seconds(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    rid = refund_id(sim, clock, capture_id, "ref-1")
    clock.advance(SETTLE_SECONDS - 1)
    assert refund_state(sim, clock, rid) == "Pending"


def test_a_refund_is_completed_after_settle_seconds(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    rid = refund_id(sim, clock, capture_id, "ref-1")
    clock.advance(SETTLE_SECONDS)
    assert refund_state(sim, clock, rid) == "Completed"


def test_advancing_the_simulated_clock_settles_refunds(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    rid = refund_id(sim, clock, capture_id, "ref-1")
    sim.advance_clock(SETTLE_SECONDS)
    assert refund_state(sim, clock, rid) == "Completed"


def test_request_timestamps_are_checked_against_the_unadvanced_clock(
    sim: Simulator, clock: FakeClock
) -> None:
    sim.advance_clock(3600)
    assert call(sim, clock, "GetServiceStatus").status == 200


def test_forced_settling_completes_refunds_that_are_not_due(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    rid = refund_id(sim, clock, capture_id, "ref-1")
    assert sim.settle() == []
    assert sim.settle(everything=True) == [rid]
    assert refund_state(sim, clock, rid) == "Completed"


def test_a_pending_refund_is_listed_on_the_capture_but_not_refunded(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    rid = refund_id(sim, clock, capture_id, "ref-1")
    details = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id})
    assert details.all("member") == [rid]
    assert details.root.find(".//{*}RefundedAmount/{*}Amount").text == "0.00"  # type: ignore[union-attr]


def test_settled_refunds_update_refunded_amount_and_id_list(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    first = refund_id(sim, clock, capture_id, "ref-1", "10.00")
    second = refund_id(sim, clock, capture_id, "ref-2", "5.50")
    clock.advance(SETTLE_SECONDS)
    details = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id})
    assert details.all("member") == [first, second]
    assert details.root.find(".//{*}RefundedAmount/{*}Amount").text == "15.50"  # type: ignore[union-attr]
    assert details.root.find(".//{*}CaptureStatus/{*}State").text == "Completed"  # type: ignore[union-attr]


def test_the_capture_closes_when_the_maximum_amount_is_refunded(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    refund_id(sim, clock, capture_id, "ref-1", "115.00")
    clock.advance(SETTLE_SECONDS)
    details = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id})
    assert (details.field("State"), details.field("ReasonCode")) == ("Closed", "MaxAmountRefunded")


def test_refunding_exactly_the_captured_amount_keeps_the_capture_open(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    refund_id(sim, clock, capture_id, "ref-1", "100.00")
    clock.advance(SETTLE_SECONDS)
    assert (
        call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id}).field("State") == "Completed"
    )


def test_the_capture_closes_after_ten_refunds(sim: Simulator, clock: FakeClock, capture_id: str) -> None:
    for n in range(10):
        refund_id(sim, clock, capture_id, f"ref-{n}", "1.00")
    clock.advance(SETTLE_SECONDS)
    details = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id})
    assert (details.field("State"), details.field("ReasonCode")) == ("Closed", "MaxRefundsProcessed")


def test_an_external_refund_is_completed_and_listed_on_the_capture(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    external = sim.external_refund(capture_id, "5.00", "AmazonA-ZRefund")
    details = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id})
    assert details.all("member") == [external["amazon_refund_id"]]
    assert details.root.find(".//{*}RefundedAmount/{*}Amount").text == "5.00"  # type: ignore[union-attr]


def test_an_external_refund_reports_its_refund_type(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    external = sim.external_refund(capture_id, "5.00", "BuyerCanceled")
    answer = call(sim, clock, "GetRefundDetails", {"AmazonRefundId": external["amazon_refund_id"]})
    assert (answer.field("RefundType"), answer.field("State")) == ("BuyerCanceled", "Completed")


def test_a_pending_external_refund_is_listed_but_not_refunded_until_it_settles(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    external = sim.external_refund(capture_id, "5.00", "AmazonA-ZRefund", state="Pending")
    details = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id})
    assert details.all("member") == [external["amazon_refund_id"]]
    assert details.root.find(".//{*}RefundedAmount/{*}Amount").text == "0.00"  # type: ignore[union-attr]
    clock.advance(SETTLE_SECONDS)
    assert refund_state(sim, clock, external["amazon_refund_id"]) == "Completed"


def test_a_chargeback_refund_reports_its_type(sim: Simulator, clock: FakeClock, capture_id: str) -> None:
    external = sim.external_refund(capture_id, "5.00", "Chargeback")
    answer = call(sim, clock, "GetRefundDetails", {"AmazonRefundId": external["amazon_refund_id"]})
    assert answer.field("RefundType") == "Chargeback"


def test_another_system_of_the_seller_refunds_under_amazons_rules(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    ours = refund_id(sim, clock, capture_id, "ord-1_1")
    erp = sim.seller_refund(capture_id, "ord-1_7", "15.00", seller_refund_note="ERP")
    assert (erp["refund_reference_id"], erp["refund_type"], erp["state"]) == (
        "ord-1_7",
        "SellerInitiated",
        "Pending",
    )
    with pytest.raises(MwsError) as refused:  # Amazon: that reference id was used with other parameters
        sim.seller_refund(capture_id, "ord-1_1", "15.00")
    assert refused.value.code == "DuplicateRequest"
    with pytest.raises(MwsError) as over:
        sim.seller_refund(capture_id, "ord-1_8", "95.00")  # 10 + 15 + 95 > 100 + 15 %
    assert over.value.code == "TransactionAmountExceeded"
    listed = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id}).all("member")
    assert listed == [ours, erp["amazon_refund_id"]]
