"""The v2 adapter behind the Amazon Pay port (adapters/pay_v2/port.py) and the router that dispatches by API
(composition.AmazonPayRouter): v2 states, errors and charges in the port's terms."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import pytest

from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.pay_v2 import errors
from amazon_pay_refunds.adapters.pay_v2.client import PayV2Client
from amazon_pay_refunds.adapters.pay_v2.models import ChargeV2, Price, RefundV2
from amazon_pay_refunds.adapters.pay_v2.port import PayV2AmazonPay, capture_details, refund_details
from amazon_pay_refunds.composition import AmazonPayRouter
from amazon_pay_refunds.core.classification import UNTYPED_REFUND_TYPE, forbids_retry
from amazon_pay_refunds.core.models import AttemptState, PaymentApi, qualified_id, reported_attempt_state
from amazon_pay_refunds.ports import AmazonPayPort
from tests.support.doubles import ScriptedAmazonPay
from tests.support.doubles import refund_details as v1_refund_details

CHARGE_ID = "S01-1234567-1234567-C000001"
REFUND_ID = "S01-1234567-1234567-R000001"


def v2_refund(state: str = "RefundInitiated", reason_code: str | None = None) -> RefundV2:
    return RefundV2(
        refund_id=REFUND_ID,
        charge_id=CHARGE_ID,
        amount=Price(Decimal("12.50"), "USD"),
        state=state,
        reason_code=reason_code,
        reason_description=None,
        creation_timestamp="2024-05-01T12:00:00Z",
        last_updated_timestamp=None,
        soft_descriptor=None,
        release_environment="Sandbox",
    )


def charge(
    state: str = "Captured", captured: str | None = "100.00", refunded: str | None = "0.00"
) -> ChargeV2:
    return ChargeV2(
        charge_id=CHARGE_ID,
        charge_permission_id="S01-1234567-1234567",
        state=state,
        reason_code=None,
        charge_amount=Price(Decimal("100.00"), "USD"),
        capture_amount=Price(Decimal(captured), "USD") if captured is not None else None,
        refunded_amount=Price(Decimal(refunded), "USD") if refunded is not None else None,
        release_environment="Sandbox",
    )


@pytest.mark.parametrize(
    ("v2_state", "reason", "expected"),
    [
        ("RefundInitiated", None, AttemptState.PENDING),
        ("Refunded", None, AttemptState.COMPLETED),
        ("Declined", "ProcessingFailure", AttemptState.DECLINED),
        ("Declined", "AmazonRejected", AttemptState.DECLINED),
    ],
)
def test_v2_refund_states_map_onto_the_lifecycle(
    v2_state: str, reason: str | None, expected: AttemptState
) -> None:
    details = refund_details(v2_refund(v2_state, reason), "r1_1")
    assert reported_attempt_state(details.refund_status.state) is expected
    assert (details.refund_status.reason_code, details.refund_reference_id) == (reason, "r1_1")
    assert details.refund_type == UNTYPED_REFUND_TYPE


def test_an_unknown_v2_state_is_not_taken_for_a_lifecycle_state() -> None:
    assert (
        reported_attempt_state(refund_details(v2_refund("Pending")).refund_status.state)
        is AttemptState.PENDING
    )
    assert reported_attempt_state(refund_details(v2_refund("Mystery")).refund_status.state) is None


def test_an_untyped_external_refund_forbids_the_retry() -> None:
    assert forbids_retry(UNTYPED_REFUND_TYPE) is not None
    assert forbids_retry("SellerInitiated") is None


def test_a_captured_charge_reads_as_a_completed_capture_with_its_amounts() -> None:
    details = capture_details(charge(refunded="30.00"))
    assert details.capture_status.state == "Completed"
    assert (details.capture_amount.amount, details.refunded_amount.amount) == (
        Decimal("100.00"),
        Decimal("30.00"),
    )
    assert details.id_list == ()


def test_a_charge_not_captured_is_not_refundable_and_has_no_amount() -> None:
    details = capture_details(charge("Authorized", captured=None, refunded=None))
    assert details.capture_status.state == "Authorized"
    assert (details.capture_amount.amount, details.capture_amount.currency_code) == (Decimal(0), "USD")


@dataclass
class FakeV2Client:
    answers: list[RefundV2 | errors.PayV2Error] = field(default_factory=lambda: [v2_refund()])
    calls: list[dict[str, Any]] = field(default_factory=list)

    def create_refund(self, charge_id: str, amount: Decimal, currency_code: str, **options: Any) -> RefundV2:
        self.calls.append({"charge_id": charge_id, "amount": amount, **options})
        answer = self.answers[len(self.calls) - 1]
        if isinstance(answer, errors.PayV2Error):
            raise answer
        return answer


def adapter(client: FakeV2Client, *, sandbox: bool = True) -> PayV2AmazonPay:
    return PayV2AmazonPay(cast(PayV2Client, client), sandbox=sandbox)


def test_the_attempts_reference_id_is_the_idempotency_key() -> None:
    client = FakeV2Client()
    details = adapter(client).refund(CHARGE_ID, "ord-1_2", Decimal("12.50"), "USD", seller_id="A1")
    assert client.calls[0]["idempotency_key"] == "ord-1_2"
    assert (client.calls[0]["charge_id"], details.amazon_refund_id) == (CHARGE_ID, REFUND_ID)


@pytest.mark.parametrize(("sandbox", "expected"), [(True, "AmazonRejected"), (False, None)])
def test_the_v1_sandbox_note_becomes_the_v2_simulation_code_only_in_the_sandbox(
    sandbox: bool, expected: str | None
) -> None:
    client = FakeV2Client()
    note = '{"SandboxSimulation": {"State": "Declined", "ReasonCode": "AmazonRejected"}}'
    adapter(client, sandbox=sandbox).refund(CHARGE_ID, "r_1", Decimal(1), "USD", seller_refund_note=note)
    assert client.calls[0]["simulation_code"] == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [({"ReasonCode": "ProcessingFailure", "Times": 1}, "ProcessingFailure;Times=1"),
     ({"ReasonCode": "ProcessingFailure", "Times": 9999}, "ProcessingFailure;Times=9999"),
     ({"ReasonCode": "ProcessingFailure", "Times": 0}, "ProcessingFailure"),
     ({"ReasonCode": "ProcessingFailure", "Times": True}, "ProcessingFailure"),
     ({"ReasonCode": "ProcessingFailure", "Times": "2"}, "ProcessingFailure"),
     ({"ReasonCode": "ProcessingFailure", "Times": 10000}, "ProcessingFailure"),
     ({"ReasonCode": "AmazonRejected", "Times": 1}, "AmazonRejected")],
)  # fmt: skip
def test_the_simulators_times_extension_travels_in_the_v2_simulation_code(
    spec: dict[str, object], expected: str
) -> None:
    """Our simulator's ProcessingFailure "Times" (v1 note) becomes ProcessingFailure;Times=N; a Times it
    cannot carry is dropped, so the simulation declines every refund rather than letting one through."""
    client = FakeV2Client()
    note = json.dumps({"SandboxSimulation": {"State": "Declined", **spec}})
    adapter(client, sandbox=True).refund(CHARGE_ID, "r_1", Decimal(1), "USD", seller_refund_note=note)
    assert client.calls[0]["simulation_code"] == expected


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (errors.TransactionAmountExceeded("TransactionAmountExceeded", "too much", http_status=400), False),
        (errors.DuplicateIdempotencyKey("DuplicateIdempotencyKey", "other body", http_status=400), False),
        (errors.PayV2Throttled("TooManyRequests", "slow down", http_status=429), True),
        (errors.PayV2ServerError("ServiceUnavailable", "later", http_status=503), True),
        (errors.PayV2TransportError("RequestTimeout", "no answer", retryable=True), True),
    ],
)
def test_v2_errors_become_the_ports_errors_with_amazons_code(
    error: errors.PayV2Error, retryable: bool
) -> None:
    with pytest.raises(AmazonPayError) as raised:
        adapter(FakeV2Client(answers=[error])).refund(CHARGE_ID, "r_1", Decimal(1), "USD")
    assert (raised.value.code, raised.value.retryable) == (error.code, retryable)


def test_the_router_sends_v2_ids_to_v2_unqualified_and_v1_ids_to_v1() -> None:
    v1, v2 = ScriptedAmazonPay(), ScriptedAmazonPay()
    v2.refund_details_answers[REFUND_ID] = v1_refund_details(REFUND_ID)
    router: AmazonPayPort = AmazonPayRouter(lambda: v1, lambda: v2)

    router.refund(qualified_id(PaymentApi.V2, CHARGE_ID), "r_1", Decimal(1), "USD")
    router.refund(CHARGE_ID, "s_1", Decimal(1), "USD")
    capture = router.get_capture_details(qualified_id(PaymentApi.V2, CHARGE_ID))
    router.get_refund_details(qualified_id(PaymentApi.V2, REFUND_ID))

    assert [c["reference"] for c in v2.refund_calls] == ["r_1"]
    assert [c["reference"] for c in v1.refund_calls] == ["s_1"]
    assert v2.capture_calls == [CHARGE_ID] and v1.capture_calls == []
    # The answer names the charge as the ports do, so the ledger read with it is the charge's.
    assert capture.amazon_capture_id == f"v2:{CHARGE_ID}"
