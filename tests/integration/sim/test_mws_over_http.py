"""The MWS endpoint over real HTTP on 127.0.0.1: every error code, the rules, settling, faults, throttling."""

from __future__ import annotations

import pytest
import requests

from amazon_pay_refunds.adapters.mws.signing import timestamp
from amazon_pay_sim import Simulator
from amazon_pay_sim.simulator import MWS_PATH
from tests.support.sim import refund_params, signed_body
from tests.support.sim_client import SimClient

REJECTED = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected"}}'
FAIL_TWICE = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"ProcessingFailure", "Times": 2}}'


def test_get_service_status_is_green(served: SimClient) -> None:
    answer = served.mws("GetServiceStatus")
    assert (answer.status, answer.field("Status")) == (200, "GREEN")


def test_a_wrong_secret_gets_signature_does_not_match(served: SimClient) -> None:
    answer = served.mws("GetServiceStatus", secret_key="wrong")
    assert (answer.status, answer.code) == (403, "SignatureDoesNotMatch")


def test_a_signature_for_another_port_does_not_match(served: SimClient) -> None:
    signed = signed_body("GetServiceStatus", {}, host=f"127.0.0.1:{served.handle.port + 1}")
    response = requests.post(served.handle.url + MWS_PATH, data=signed, timeout=5)
    assert (response.status_code, "SignatureDoesNotMatch" in response.text) == (403, True)


def test_an_unknown_access_key_gets_invalid_access_key_id(served: SimClient) -> None:
    answer = served.mws("GetServiceStatus", access_key="NOPE")
    assert (answer.status, answer.code) == (403, "InvalidAccessKeyId")


def test_a_foreign_seller_id_gets_access_denied(served: SimClient, simulator: Simulator) -> None:
    simulator.add_seller("A2OTHERSELLER", "OTHERKEY", "other-secret")
    answer = served.mws("GetServiceStatus", seller_id="A2OTHERSELLER")
    assert (answer.status, answer.code) == (401, "AccessDenied")


def test_an_old_timestamp_is_refused(served: SimClient) -> None:
    answer = served.mws("GetServiceStatus", {"Timestamp": "2015-12-31T23:59:58Z"})
    assert (answer.status, answer.code) == (400, "InvalidParameterValue")


def test_a_current_timestamp_in_amazons_form_is_accepted(served: SimClient) -> None:
    assert served.mws("GetServiceStatus", {"Timestamp": timestamp()}).status == 200


def test_a_get_on_the_endpoint_is_an_invalid_address(served: SimClient) -> None:
    response = requests.get(served.handle.url + MWS_PATH, timeout=5)
    assert (response.status_code, "InvalidAddress" in response.text) == (404, True)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"RefundReferenceId": "x" * 33}, 400, "InvalidParameterValue"),
        ({"RefundAmount.Amount": "1.001"}, 400, "InvalidParameterValue"),
        ({"RefundAmount.CurrencyCode": "EUR"}, 400, "CurrencyMismatch"),
        ({"SellerRefundNote": "n" * 256}, 400, "InvalidParameterValue"),
        ({"SoftDescriptor": "d" * 17}, 400, "InvalidParameterValue"),
        (
            {"SellerRefundNote": '{"SandboxSimulation": {"State":"Open"}}'},
            400,
            "InvalidSandboxSimulationSpecified",
        ),
        ({"RefundAmount.Amount": "115.01"}, 400, "TransactionAmountExceeded"),
        ({"AmazonCaptureId": "S01-0000000-0000000-C000000"}, 400, "InvalidParameterValue"),
        ({"RefundReferenceId": ""}, 400, "MissingParameter"),
    ],
)
def test_refund_errors_are_answered_with_amazons_code_and_status(
    served: SimClient, params: dict[str, str], status: int, code: str
) -> None:
    capture_id = served.capture()
    answer = served.mws("Refund", {**refund_params(capture_id, "r1"), **params})
    assert (answer.status, answer.code) == (status, code)


def test_a_closed_capture_is_not_refundable(served: SimClient) -> None:
    capture_id = served.capture()
    served.control("POST", f"/captures/{capture_id}/close")
    answer = served.mws("Refund", refund_params(capture_id, "r1"))
    assert (answer.status, answer.code) == (405, "CaptureNotRefundable")


def test_a_reused_reference_id_with_other_parameters_is_a_duplicate_request(served: SimClient) -> None:
    capture_id = served.capture()
    served.mws("Refund", refund_params(capture_id, "r1", "1.00"))
    answer = served.mws("Refund", refund_params(capture_id, "r1", "2.00"))
    assert (answer.status, answer.code) == (400, "DuplicateRequest")


def test_a_capture_reference_id_cannot_be_a_refund_reference_id(served: SimClient) -> None:
    capture_id = served.capture(capture_reference_id="order-1")
    answer = served.mws("Refund", refund_params(capture_id, "order-1"))
    assert (answer.status, answer.code) == (400, "DuplicateReferenceId")


def test_an_unchanged_retry_returns_the_same_refund(served: SimClient) -> None:
    capture_id = served.capture()
    first = served.mws("Refund", refund_params(capture_id, "r1"))
    again = served.mws("Refund", refund_params(capture_id, "r1"))
    assert again.field("AmazonRefundId") == first.field("AmazonRefundId")


def test_the_eleventh_refund_exceeds_the_transaction_count(served: SimClient) -> None:
    capture_id = served.capture()
    for n in range(10):
        assert served.mws("Refund", refund_params(capture_id, f"r{n}", "1.00")).status == 200
    answer = served.mws("Refund", refund_params(capture_id, "r10", "1.00"))
    assert (answer.status, answer.code) == (400, "TransactionCountExceeded")


def test_settled_refunds_show_on_the_capture(served: SimClient) -> None:
    capture_id = served.capture()
    refund_id = served.mws("Refund", refund_params(capture_id, "r1", "40.00")).field("AmazonRefundId")
    served.control("POST", "/settle", {"all": True})
    details = served.mws("GetCaptureDetails", {"AmazonCaptureId": capture_id})
    assert details.all("member") == [refund_id]
    assert details.root.find(".//{*}RefundedAmount/{*}Amount").text == "40.00"  # type: ignore[union-attr]


def test_advancing_the_clock_settles_a_refund(served: SimClient) -> None:
    capture_id = served.capture()
    refund_id = served.mws("Refund", refund_params(capture_id, "r1")).field("AmazonRefundId") or ""
    assert served.control("POST", "/clock/advance", {"seconds": 3600}).status_code == 200
    assert served.mws("GetRefundDetails", {"AmazonRefundId": refund_id}).field("State") == "Completed"


def test_amazon_rejected_is_declined_after_settling(served: SimClient) -> None:
    capture_id = served.capture()
    refund_id = served.mws("Refund", refund_params(capture_id, "r1", SellerRefundNote=REJECTED)).field(
        "AmazonRefundId"
    )
    served.control("POST", "/settle", {"all": True})
    answer = served.mws("GetRefundDetails", {"AmazonRefundId": refund_id or ""})
    assert (answer.field("State"), answer.field("ReasonCode")) == ("Declined", "AmazonRejected")


def test_processing_failure_times_declines_the_first_n_then_completes(served: SimClient) -> None:
    capture_id = served.capture()
    outcomes = []
    for n in range(3):
        refund_id = served.mws(
            "Refund", refund_params(capture_id, f"r{n}", SellerRefundNote=FAIL_TWICE)
        ).field("AmazonRefundId")
        served.control("POST", "/settle", {"all": True})
        answer = served.mws("GetRefundDetails", {"AmazonRefundId": refund_id or ""})
        outcomes.append((answer.field("State"), answer.field("ReasonCode")))
    assert outcomes == [
        ("Declined", "ProcessingFailure"),
        ("Declined", "ProcessingFailure"),
        ("Completed", None),
    ]


def test_a_503_fault_answers_503_then_recovers(served: SimClient) -> None:
    served.control("POST", "/faults", {"operation": "GetServiceStatus", "fault": "503", "count": 1})
    assert served.mws("GetServiceStatus").status == 503
    assert served.mws("GetServiceStatus").status == 200


def test_a_500_fault_answers_500(served: SimClient) -> None:
    served.control("POST", "/faults", {"operation": "GetServiceStatus", "fault": "500"})
    assert served.mws("GetServiceStatus").code == "InternalServerError"


def test_a_throttle_fault_answers_request_throttled(served: SimClient) -> None:
    served.control("POST", "/faults", {"operation": "GetServiceStatus", "fault": "throttle"})
    answer = served.mws("GetServiceStatus")
    assert (answer.status, answer.code) == (503, "RequestThrottled")


def test_a_timeout_fault_leaves_the_client_waiting(served: SimClient) -> None:
    served.control(
        "POST", "/faults", {"operation": "GetServiceStatus", "fault": "timeout", "hold_seconds": 5}
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        served.mws("GetServiceStatus", timeout=0.3)


def test_a_held_connection_is_dropped_without_an_answer(served: SimClient) -> None:
    served.control(
        "POST", "/faults", {"operation": "GetServiceStatus", "fault": "timeout", "hold_seconds": 0.1}
    )
    with pytest.raises(requests.exceptions.ConnectionError):
        served.mws("GetServiceStatus", timeout=5)


def test_accept_then_timeout_makes_the_refund_though_the_client_times_out(served: SimClient) -> None:
    capture_id = served.capture()
    served.control(
        "POST", "/faults", {"operation": "Refund", "fault": "accept-then-timeout", "hold_seconds": 5}
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        served.mws("Refund", refund_params(capture_id, "r1"), timeout=0.3)
    refunds = served.control("GET", f"/captures/{capture_id}").json()["refunds"]
    assert [r["refund_reference_id"] for r in refunds] == ["r1"]


def test_a_burst_of_refunds_is_throttled_when_throttling_is_on(served: SimClient) -> None:
    served.control("POST", "/throttling", {"enabled": True})
    capture_id = served.capture()
    statuses = [served.mws("Refund", refund_params(capture_id, f"r{n}", "1.00")).status for n in range(3)]
    assert statuses == [200, 200, 503]


def test_the_call_log_counts_mws_calls(served: SimClient) -> None:
    served.mws("GetServiceStatus")
    served.mws("GetServiceStatus", secret_key="wrong")
    calls = served.control("GET", "/calls").json()["calls"]
    assert [(c["action"], c["status"], c["code"]) for c in calls] == [
        ("GetServiceStatus", 200, None),
        ("GetServiceStatus", 403, "SignatureDoesNotMatch"),
    ]


def test_concurrent_refunds_cannot_overdraw_a_capture(served: SimClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    capture_id = served.capture("100.00")
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(
            pool.map(lambda n: served.mws("Refund", refund_params(capture_id, f"r{n}", "40.00")), range(12))
        )
    assert sorted(a.status for a in answers) == [200, 200] + [400] * 10
