"""POST /refunds for Amazon Pay API v2 (issue 14): exactly one of amazon_capture_id / amazon_charge_id, the
seller's v2 key required, and a v2 refund's reservation on its charge's own ledger."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from amazon_pay_refunds.adapters.mws.credentials import MissingApiCredentials, PayV2Credentials
from amazon_pay_refunds.adapters.mws.models import CaptureDetails, Price
from amazon_pay_refunds.api.models import RefundRequestBody, to_refund_request
from amazon_pay_refunds.core.models import PaymentApi, Refund, RefundStatus
from amazon_pay_refunds.ports import AmazonPayError
from amazon_pay_refunds.use_cases.errors import UnknownSeller
from amazon_pay_refunds.use_cases.refund_requests import RefundRequest, RefundService
from tests.support.doubles import (
    CAPTURE_ID,
    NOW,
    SELLER,
    MemoryStore,
    ScriptedAmazonPay,
    capture_details,
    credentials,
    refund_details,
)
from tests.support.pay_v2_keys import private_pem

BODY: dict[str, Any] = {"refund_id": "ord-1001-r1", "amount": "12.50", "currency_code": "USD"}


def test_a_charge_id_makes_a_v2_request() -> None:
    request = to_refund_request(RefundRequestBody.model_validate({**BODY, "amazon_charge_id": CAPTURE_ID}))
    assert (request.api, request.amazon_capture_id) == (PaymentApi.V2, CAPTURE_ID)
    v1 = to_refund_request(RefundRequestBody.model_validate({**BODY, "amazon_capture_id": CAPTURE_ID}))
    assert v1.api is PaymentApi.V1


@pytest.mark.parametrize(
    "ids", [{}, {"amazon_capture_id": CAPTURE_ID, "amazon_charge_id": CAPTURE_ID}], ids=["neither", "both"]
)
def test_exactly_one_of_capture_and_charge_is_required(ids: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as error:
        RefundRequestBody.model_validate({**BODY, **ids})
    assert "exactly one of amazon_capture_id" in str(error.value)


def test_a_malformed_charge_id_is_refused() -> None:
    with pytest.raises(ValidationError):
        RefundRequestBody.model_validate({**BODY, "amazon_charge_id": "S01-1234567-1234567-C000001/../x"})


def v1_only(seller_id: str | None) -> PayV2Credentials:
    raise MissingApiCredentials(seller_id or SELLER.seller_id, "API v2")


def v2_key(seller_id: str | None) -> PayV2Credentials:
    return PayV2Credentials(SELLER.seller_id, "SANDBOX-KEY", private_pem())


def v2_request() -> RefundRequest:
    return RefundRequest("r1", CAPTURE_ID, Decimal("12.50"), "USD", api=PaymentApi.V2)


def test_a_v2_charge_for_a_seller_with_v1_keys_only_is_an_unknown_seller_and_nothing_is_stored() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay()
    service = RefundService(store, amazon, credentials, v2_seller_credentials=v1_only, now=lambda: NOW)
    with pytest.raises(UnknownSeller):
        service.request_refund(v2_request(), deadline=1e12)
    assert (store.refunds, amazon.refund_calls, amazon.capture_calls) == ({}, [], [])


def test_a_v2_refund_reserves_on_its_charges_ledger_not_on_a_capture_with_the_same_id() -> None:
    store, amazon = MemoryStore(), ScriptedAmazonPay()
    service = RefundService(store, amazon, credentials, v2_seller_credentials=v2_key, now=lambda: NOW)
    outcome = service.request_refund(v2_request(), deadline=1e12)
    assert outcome.refund.api is PaymentApi.V2
    assert amazon.capture_calls == [f"v2:{CAPTURE_ID}"]
    assert set(store.ledgers) == {f"v2:{CAPTURE_ID}"}
    assert service.get_ledger(CAPTURE_ID, PaymentApi.V2).to_resource()["amazon_charge_id"] == CAPTURE_ID


def v2_charge(refunded: str) -> CaptureDetails:
    return replace(
        capture_details("50.00"),
        amazon_capture_id=f"v2:{CAPTURE_ID}",
        refunded_amount=Price(Decimal(refunded), "USD"),
    )


def test_a_new_v2_refund_that_refunded_money_of_unknown_origin_could_overdraw_is_held_unsent() -> None:
    """10.00 refunded on the charge may be our first refund (sent, its answer lost) or someone else's:
    v2 lists no refunds on a charge. 5.00 more fits either way; 35.00 more could put 60.00 on a 50.00
    charge (Amazon's cap allows 15 % over), so it is held for a person and nothing is sent for it."""
    store = MemoryStore()
    amazon = ScriptedAmazonPay(
        capture_answers=[v2_charge("0.00"), v2_charge("10.00")],
        refund_answers=[AmazonPayError("RequestTimeout", "no answer", retryable=True), refund_details()],
    )
    service = RefundService(store, amazon, credentials, v2_seller_credentials=v2_key, now=lambda: NOW)

    def request(refund_id: str, amount: str) -> Refund:
        body = replace(v2_request(), refund_id=refund_id, amount=Decimal(amount))
        return service.request_refund(body, deadline=1e12).refund

    assert request("r0", "10.00").status is RefundStatus.REQUESTED  # sent, Amazon's answer unknown
    assert request("r1", "5.00").status is RefundStatus.PENDING
    held = request("r2", "35.00")
    assert held.status is RefundStatus.MANUAL_ACTION_REQUIRED
    assert "10.00 unexplained" in (held.reason_code or "")
    assert [c["amount"] for c in amazon.refund_calls] == [Decimal("10.00"), Decimal("5.00")]
