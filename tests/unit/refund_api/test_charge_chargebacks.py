"""GET /charges/{id} (issue 14): a v2 charge's ledger knows its charge permission (Get Charge's
chargePermissionId, kept when the ledger opens) and shows the chargebacks recorded on it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.core.models import PaymentApi
from amazon_pay_refunds.use_cases.refund_requests import RefundService
from tests.support.doubles import (
    CAPTURE_ID,
    NOW,
    MemoryStore,
    ScriptedAmazonPay,
    capture_details,
    credentials,
)

from .test_pay_v2_requests import v2_key, v2_request

PERMISSION = "S01-1234567-1234567"
CHARGEBACK = "S01-1234567-1234567-B000001"
LEDGER = f"v2:{CAPTURE_ID}"


def charge_answer(permission: str | None = PERMISSION) -> ScriptedAmazonPay:
    return ScriptedAmazonPay(capture_answers=[replace(capture_details(), charge_permission_id=permission)])


def service(store: MemoryStore, amazon: ScriptedAmazonPay) -> RefundService:
    return RefundService(store, amazon, credentials, v2_seller_credentials=v2_key, now=lambda: NOW)


def test_the_ledger_keeps_the_charge_permission_and_shows_its_chargebacks() -> None:
    store, amazon = MemoryStore(), charge_answer()
    refunds = service(store, amazon)
    refunds.request_refund(v2_request(), deadline=1e12)
    store.record_chargeback("A1EXAMPLE", PERMISSION, CHARGEBACK, at=NOW + timedelta(minutes=5))

    view = refunds.get_ledger(CAPTURE_ID, PaymentApi.V2).to_resource()

    assert store.ledgers[LEDGER].charge_permission_id == PERMISSION
    assert view["charge_permission_id"] == PERMISSION
    assert view["chargebacks"] == [{"chargeback_id": CHARGEBACK, "notified_at": "2024-05-01T12:05:00.000Z"}]
    assert amazon.capture_calls == [LEDGER]  # the read itself asks Amazon nothing


def test_an_older_ledger_without_its_permission_reads_it_from_get_charge_once() -> None:
    store, amazon = MemoryStore(), charge_answer(None)
    refunds = service(store, amazon)
    refunds.request_refund(v2_request(), deadline=1e12)  # opened as before ledgers kept it
    assert store.ledgers[LEDGER].charge_permission_id is None
    amazon.capture_answers = [replace(capture_details(), charge_permission_id=PERMISSION)]
    amazon.capture_calls.clear()
    store.record_chargeback("A1EXAMPLE", PERMISSION, CHARGEBACK, at=NOW)

    first = refunds.get_ledger(CAPTURE_ID, PaymentApi.V2).to_resource()
    again = refunds.get_ledger(CAPTURE_ID, PaymentApi.V2).to_resource()

    assert first == again and [c["chargeback_id"] for c in first["chargebacks"]] == [CHARGEBACK]
    assert amazon.capture_calls == [LEDGER]


def test_amazon_not_answering_leaves_the_view_without_the_permission_rather_than_failing() -> None:
    store, amazon = MemoryStore(), charge_answer(None)
    refunds = service(store, amazon)
    refunds.request_refund(v2_request(), deadline=1e12)
    amazon.capture_answers = [AmazonPayError("ServiceUnavailable", "later", http_status=503, retryable=True)]

    view = refunds.get_ledger(CAPTURE_ID, PaymentApi.V2).to_resource()

    assert (view["charge_permission_id"], view["chargebacks"]) == (None, [])


def test_a_v1_capture_view_has_no_chargeback_fields() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay()
    refunds = RefundService(store, amazon, credentials, now=lambda: NOW)
    refunds.request_refund(replace(v2_request(), api=PaymentApi.V1), deadline=1e12)
    view = refunds.get_ledger(CAPTURE_ID).to_resource()
    assert "chargebacks" not in view and "charge_permission_id" not in view
