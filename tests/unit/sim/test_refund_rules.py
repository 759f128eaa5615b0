"""Amazon's Refund rules: validation, capture state, currency, count and amount caps, idempotency."""

from __future__ import annotations

import pytest

from amazon_pay_sim import Simulator
from tests.support.sim import Answer, FakeClock, call, refund_params


@pytest.fixture
def capture_id(sim: Simulator) -> str:
    return sim.create_capture("100.00", "USD")


def refund(
    sim: Simulator, clock: FakeClock, capture_id: str, reference: str, amount: str = "10.00", **extra: str
) -> Answer:
    return call(sim, clock, "Refund", refund_params(capture_id, reference, amount, **extra))


def test_a_refund_is_answered_pending_with_its_amazon_refund_id(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    answer = refund(sim, clock, capture_id, "ref-1", "12.50")
    assert answer.status == 200
    assert answer.field("State") == "Pending"
    assert answer.field("RefundReferenceId") == "ref-1"
    assert answer.field("Amount") == "12.50"
    assert (answer.field("AmazonRefundId") or "").startswith(capture_id.rsplit("-", 1)[0] + "-R")


@pytest.mark.parametrize("reference", ["a" * 33, "ref.1", "ref 1", "réf"])
def test_a_malformed_refund_reference_id_is_an_invalid_parameter(
    sim: Simulator, clock: FakeClock, capture_id: str, reference: str
) -> None:
    assert refund(sim, clock, capture_id, reference).code == "InvalidParameterValue"


def test_a_32_character_reference_id_of_amazons_alphabet_is_accepted(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    assert refund(sim, clock, capture_id, "A-z_0" + "9" * 27).status == 200


@pytest.mark.parametrize("amount", ["1.001", "1e2", "-1.00", "0", "0.00", "1,00", " 1.00", "abc"])
def test_a_malformed_usd_amount_is_an_invalid_parameter(
    sim: Simulator, clock: FakeClock, capture_id: str, amount: str
) -> None:
    assert refund(sim, clock, capture_id, "ref-1", amount).code == "InvalidParameterValue"


def test_a_jpy_amount_with_decimals_is_an_invalid_parameter(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("10000", "JPY")
    answer = call(sim, clock, "Refund", refund_params(capture_id, "ref-1", "100.50", "JPY"))
    assert answer.code == "InvalidParameterValue"


def test_a_whole_jpy_amount_is_accepted(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("10000", "JPY")
    answer = call(sim, clock, "Refund", refund_params(capture_id, "ref-1", "100", "JPY"))
    assert (answer.status, answer.field("Amount")) == (200, "100")


def test_an_unknown_currency_is_an_invalid_parameter(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    answer = call(sim, clock, "Refund", refund_params(capture_id, "ref-1", "1.00", "XXX"))
    assert answer.code == "InvalidParameterValue"


def test_a_seller_refund_note_over_255_characters_is_refused(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    assert refund(sim, clock, capture_id, "ref-1", SellerRefundNote="n" * 256).code == "InvalidParameterValue"


def test_a_seller_refund_note_of_255_characters_is_accepted(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    assert refund(sim, clock, capture_id, "ref-1", SellerRefundNote="n" * 255).status == 200


def test_a_soft_descriptor_over_16_characters_is_refused(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    assert refund(sim, clock, capture_id, "ref-1", SoftDescriptor="d" * 17).code == "InvalidParameterValue"


def test_a_soft_descriptor_is_shown_with_amazons_prefix(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    assert (
        refund(sim, clock, capture_id, "ref-1", SoftDescriptor="d" * 16).field("SoftDescriptor")
        == "AMZ*" + "d" * 16
    )


def test_a_refund_in_another_currency_than_the_capture_is_a_currency_mismatch(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    answer = call(sim, clock, "Refund", refund_params(capture_id, "ref-1", "1.00", "EUR"))
    assert (answer.status, answer.code) == (400, "CurrencyMismatch")


def test_an_unknown_capture_is_an_invalid_parameter(sim: Simulator, clock: FakeClock) -> None:
    answer = refund(sim, clock, "S01-0000000-0000000-C000000", "ref-1")
    assert (answer.status, answer.code) == (400, "InvalidParameterValue")


def test_another_sellers_capture_is_not_found(sim: Simulator, clock: FakeClock) -> None:
    sim.add_seller("A2OTHERSELLER", "OTHERKEY", "other-secret")
    capture_id = sim.create_capture("100.00", "USD", seller_id="A2OTHERSELLER")
    assert refund(sim, clock, capture_id, "ref-1").code == "InvalidParameterValue"


@pytest.mark.parametrize("state", ["Pending", "Declined", "Closed"])
def test_only_a_completed_capture_can_be_refunded(sim: Simulator, clock: FakeClock, state: str) -> None:
    capture_id = sim.create_capture("100.00", "USD", state=state)
    answer = refund(sim, clock, capture_id, "ref-1")
    assert (answer.status, answer.code) == (405, "CaptureNotRefundable")


def test_a_closed_capture_cannot_be_refunded(sim: Simulator, clock: FakeClock, capture_id: str) -> None:
    sim.close_capture(capture_id)
    assert refund(sim, clock, capture_id, "ref-1").code == "CaptureNotRefundable"


def test_the_eleventh_refund_on_a_capture_is_refused(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    for n in range(10):
        assert refund(sim, clock, capture_id, f"ref-{n}", "1.00").status == 200
    answer = refund(sim, clock, capture_id, "ref-10", "1.00")
    assert (answer.status, answer.code) == (400, "TransactionCountExceeded")


@pytest.mark.parametrize(
    ("captured", "currency", "allowed", "refused"),
    [
        ("100.00", "USD", "115.00", "115.01"),  # 15 % is less than 75
        ("1000.00", "EUR", "1075.00", "1075.01"),  # 75 is less than 15 %
        ("100000", "JPY", "108400", "108401"),  # 8,400 JPY
    ],
)
def test_refunds_may_exceed_the_capture_by_amazons_allowance_only(
    sim: Simulator, clock: FakeClock, captured: str, currency: str, allowed: str, refused: str
) -> None:
    capture_id = sim.create_capture(captured, currency)
    over = call(sim, clock, "Refund", refund_params(capture_id, "ref-1", refused, currency))
    assert (over.status, over.code) == (400, "TransactionAmountExceeded")
    assert call(sim, clock, "Refund", refund_params(capture_id, "ref-2", allowed, currency)).status == 200


def test_pending_refunds_count_against_the_cap(sim: Simulator, clock: FakeClock, capture_id: str) -> None:
    refund(sim, clock, capture_id, "ref-1", "100.00")
    assert refund(sim, clock, capture_id, "ref-2", "15.01").code == "TransactionAmountExceeded"


def test_external_refunds_count_against_the_cap(sim: Simulator, clock: FakeClock, capture_id: str) -> None:
    sim.external_refund(capture_id, "100.00", "AmazonA-ZRefund")
    assert refund(sim, clock, capture_id, "ref-1", "15.01").code == "TransactionAmountExceeded"


def test_a_declined_refund_frees_its_amount(sim: Simulator, clock: FakeClock, capture_id: str) -> None:
    note = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected"}}'
    refund(sim, clock, capture_id, "ref-1", "100.00", SellerRefundNote=note)
    sim.settle(everything=True)
    assert refund(sim, clock, capture_id, "ref-2", "100.00").status == 200


def test_the_same_reference_id_and_parameters_return_the_same_refund(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    first = refund(sim, clock, capture_id, "ref-1")
    again = refund(sim, clock, capture_id, "ref-1")
    assert again.status == 200
    assert again.field("AmazonRefundId") == first.field("AmazonRefundId")
    assert len(sim.capture_view(capture_id)["refunds"]) == 1


def test_a_replay_reports_the_refunds_current_state(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    refund(sim, clock, capture_id, "ref-1")
    sim.settle(everything=True)
    assert refund(sim, clock, capture_id, "ref-1").field("State") == "Completed"


@pytest.mark.parametrize(
    "change",
    [{"RefundAmount.Amount": "10.01"}, {"SellerRefundNote": "other"}, {"SoftDescriptor": "other"}],
)
def test_the_same_reference_id_with_changed_parameters_is_a_duplicate_request(
    sim: Simulator, clock: FakeClock, capture_id: str, change: dict[str, str]
) -> None:
    refund(sim, clock, capture_id, "ref-1")
    answer = call(sim, clock, "Refund", {**refund_params(capture_id, "ref-1"), **change})
    assert (answer.status, answer.code) == (400, "DuplicateRequest")


def test_the_same_reference_id_on_another_capture_is_a_duplicate_request(
    sim: Simulator, clock: FakeClock, capture_id: str
) -> None:
    refund(sim, clock, capture_id, "ref-1")
    other = sim.create_capture("100.00", "USD")
    assert refund(sim, clock, other, "ref-1").code == "DuplicateRequest"


def test_a_reference_id_used_by_a_capture_is_a_duplicate_reference_id(
    sim: Simulator, clock: FakeClock
) -> None:
    capture_id = sim.create_capture("100.00", "USD", capture_reference_id="order-1001")
    answer = refund(sim, clock, capture_id, "order-1001")
    assert (answer.status, answer.code) == (400, "DuplicateReferenceId")


def test_get_refund_details_of_an_unknown_refund_is_an_invalid_parameter(
    sim: Simulator, clock: FakeClock
) -> None:
    answer = call(sim, clock, "GetRefundDetails", {"AmazonRefundId": "S01-0000000-0000000-R000000"})
    assert (answer.status, answer.code) == (400, "InvalidParameterValue")


def test_get_capture_details_of_an_unknown_capture_is_an_invalid_parameter(
    sim: Simulator, clock: FakeClock
) -> None:
    answer = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": "S01-0000000-0000000-C000000"})
    assert (answer.status, answer.code) == (400, "InvalidParameterValue")
