"""Acceptance: the official SDK (amazon_pay 2.7.1), pointed at the simulator, talks to it and parses it."""

from __future__ import annotations

import pytest
from amazon_pay import payment_request
from amazon_pay.client import AmazonPayClient

from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_SELLER_ID, MWS_PATH
from tests.support.sim_client import SimClient

# The SDK itself calls datetime.utcnow(); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning")


@pytest.fixture(autouse=True)
def _no_sdk_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK sleeps 1, 4, 10 s between 5xx retries; these tests never wait for it."""
    monkeypatch.setattr(payment_request.time, "sleep", lambda seconds: None)


def sdk_client(served: SimClient, secret_key: str = DEFAULT_SECRET_KEY) -> AmazonPayClient:
    client = AmazonPayClient(
        mws_access_key=DEFAULT_ACCESS_KEY,
        mws_secret_key=secret_key,
        merchant_id=DEFAULT_SELLER_ID,
        region="us",
        currency_code="USD",
        sandbox=True,
        handle_throttle=False,
    )
    client._mws_endpoint = served.handle.url + MWS_PATH  # normally https://mws.amazonservices.com/...
    return client


def test_the_sdk_issues_a_refund_and_parses_the_answer(served: SimClient) -> None:
    capture_id = served.capture()
    response = sdk_client(served).refund(capture_id, "sdk-ref-1", "12.50", seller_refund_note="Returned item")
    assert response.success
    details = response.to_dict()["RefundResponse"]["RefundResult"]["RefundDetails"]
    assert (details["RefundStatus"]["State"], details["RefundAmount"]["Amount"]) == ("Pending", "12.50")
    assert response.request_id


def test_the_sdk_reads_refund_details(served: SimClient) -> None:
    capture_id = served.capture()
    client = sdk_client(served)
    refund_id = client.refund(capture_id, "sdk-ref-1", "1.00").to_dict()["RefundResponse"]["RefundResult"][
        "RefundDetails"
    ]["AmazonRefundId"]
    served.control("POST", "/settle", {"all": True})
    response = client.get_refund_details(refund_id)
    details = response.to_dict()["GetRefundDetailsResponse"]["GetRefundDetailsResult"]["RefundDetails"]
    assert (response.success, details["RefundStatus"]["State"]) == (True, "Completed")


def test_the_sdk_reads_capture_details_with_its_refunds(served: SimClient) -> None:
    capture_id = served.capture()
    client = sdk_client(served)
    client.refund(capture_id, "sdk-ref-1", "1.00")
    client.refund(capture_id, "sdk-ref-2", "2.00")
    served.control("POST", "/settle", {"all": True})
    response = client.get_capture_details(capture_id)
    details = response.to_dict()["GetCaptureDetailsResponse"]["GetCaptureDetailsResult"]["CaptureDetails"]
    assert len(details["IdList"]["member"]) == 2
    assert details["RefundedAmount"]["Amount"] == "3.00"


def test_every_sdk_answer_converts_to_json(served: SimClient) -> None:
    capture_id = served.capture()
    client = sdk_client(served)
    answers = [
        client.refund(capture_id, "sdk-ref-1", "1.00"),
        client.get_capture_details(capture_id),
        client.get_service_status(),
        client.refund(capture_id, "sdk-ref-1", "9.00"),  # an error answer
    ]
    assert all(answer.to_json().startswith("{") for answer in answers)


def test_the_sdk_sees_amazons_error_code_for_a_duplicate_request(served: SimClient) -> None:
    capture_id = served.capture()
    client = sdk_client(served)
    client.refund(capture_id, "sdk-ref-1", "1.00")
    response = client.refund(capture_id, "sdk-ref-1", "2.00")
    assert (response.success, response.to_dict()["ErrorResponse"]["Error"]["Code"]) == (
        False,
        "DuplicateRequest",
    )


def test_a_request_signed_with_the_wrong_secret_gets_signature_does_not_match(served: SimClient) -> None:
    response = sdk_client(served, secret_key="wrong-secret").get_service_status()
    error = response.to_dict()["ErrorResponse"]["Error"]
    assert (response.success, error["Code"]) == (False, "SignatureDoesNotMatch")
