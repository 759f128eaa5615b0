"""The JSON control API under /simulator: what tests and the local stack drive the simulator with."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.sim import refund_params
from tests.support.sim_client import SimClient


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_creating_a_capture_answers_201_with_its_id(served: SimClient) -> None:
    response = served.control("POST", "/captures", {"amount": "100.00", "currency_code": "USD"})
    assert response.status_code == 201
    assert response.json()["amazon_capture_id"].startswith("S01-")


def test_a_capture_is_completed_by_default(served: SimClient) -> None:
    capture_id = served.capture()
    assert served.control("GET", f"/captures/{capture_id}").json()["state"] == "Completed"


def test_a_capture_can_be_created_in_another_state(served: SimClient) -> None:
    capture_id = served.capture(state="Pending")
    assert served.mws("Refund", refund_params(capture_id, "r1")).code == "CaptureNotRefundable"


def test_a_capture_can_belong_to_another_seller(served: SimClient) -> None:
    served.handle.simulator.add_seller("A2OTHERSELLER", "OTHERKEY", "other-secret")
    capture_id = served.capture(seller_id="A2OTHERSELLER")
    assert served.control("GET", f"/captures/{capture_id}").json()["seller_id"] == "A2OTHERSELLER"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 100.0, "currency_code": "USD"}, "InvalidAmount"),
        ({"amount": "100.001", "currency_code": "USD"}, "InvalidAmount"),
        ({"amount": "100", "currency_code": "XYZ"}, "InvalidCurrency"),
        ({"amount": "100.00"}, "MissingField"),
        ({"amount": "100.00", "currency_code": "USD", "colour": "red"}, "UnknownField"),
        ({"amount": "100.00", "currency_code": "USD", "state": "Open"}, "InvalidState"),
        ({"amount": "100.00", "currency_code": "USD", "seller_id": "NOBODY"}, "UnknownSeller"),
    ],
)
def test_bad_capture_input_gets_a_clear_400(served: SimClient, body: dict[str, Any], code: str) -> None:
    response = served.control("POST", "/captures", body)
    assert (response.status_code, error_code(response)) == (400, code)


def test_a_body_that_is_not_json_gets_a_clear_400(served: SimClient) -> None:
    import requests

    response = requests.post(f"{served.handle.url}/simulator/captures", data=b"{nope", timeout=5)
    assert (response.status_code, error_code(response)) == (400, "InvalidJson")


def test_an_unknown_capture_is_404(served: SimClient) -> None:
    response = served.control("GET", "/captures/S01-0000000-0000000-C000000")
    assert (response.status_code, error_code(response)) == (404, "CaptureNotFound")


def test_an_unknown_route_is_404(served: SimClient) -> None:
    assert served.control("GET", "/nothing").status_code == 404


def test_the_capture_view_lists_its_refunds(served: SimClient) -> None:
    capture_id = served.capture()
    served.mws("Refund", refund_params(capture_id, "r1", "7.00"))
    view = served.control("GET", f"/captures/{capture_id}").json()
    assert [(r["refund_reference_id"], r["amount"], r["state"]) for r in view["refunds"]] == [
        ("r1", "7.00", "Pending")
    ]


def test_an_external_refund_is_completed_and_counted(served: SimClient) -> None:
    capture_id = served.capture()
    response = served.control(
        "POST",
        f"/captures/{capture_id}/external-refund",
        {"amount": "5.00", "refund_type": "AmazonA-ZRefund"},
    )
    assert (response.status_code, response.json()["state"]) == (201, "Completed")
    assert served.control("GET", f"/captures/{capture_id}").json()["refunded_amount"] == "5.00"


def test_an_external_refund_of_an_unknown_type_is_refused(served: SimClient) -> None:
    capture_id = served.capture()
    response = served.control(
        "POST", f"/captures/{capture_id}/external-refund", {"amount": "5.00", "refund_type": "Chargeback?"}
    )
    assert (response.status_code, error_code(response)) == (400, "InvalidRefundType")


def test_closing_a_capture_makes_it_closed(served: SimClient) -> None:
    capture_id = served.capture()
    response = served.control("POST", f"/captures/{capture_id}/close")
    assert (response.json()["state"], response.json()["reason_code"]) == ("Closed", "AmazonClosed")


@pytest.mark.parametrize(
    "body",
    [
        {"operation": "Refund", "fault": "slow"},
        {"operation": "Capture", "fault": "503"},
        {"operation": "Refund", "fault": "503", "count": -1},
        {"fault": "503"},
    ],
)
def test_a_bad_fault_gets_a_clear_400(served: SimClient, body: dict[str, Any]) -> None:
    response = served.control("POST", "/faults", body)
    assert response.status_code == 400
    assert response.json()["error"]["message"]


def test_settle_without_all_settles_only_due_refunds(served: SimClient) -> None:
    capture_id = served.capture()
    served.mws("Refund", refund_params(capture_id, "r1"))
    assert served.control("POST", "/settle").json() == {"settled": []}


def test_settle_all_settles_every_pending_refund(served: SimClient) -> None:
    capture_id = served.capture()
    refund_id = served.mws("Refund", refund_params(capture_id, "r1")).field("AmazonRefundId")
    assert served.control("POST", "/settle", {"all": True}).json() == {"settled": [refund_id]}


def test_a_negative_clock_advance_is_refused(served: SimClient) -> None:
    response = served.control("POST", "/clock/advance", {"seconds": -5})
    assert (response.status_code, error_code(response)) == (400, "InvalidSeconds")


def test_reset_forgets_captures(served: SimClient) -> None:
    capture_id = served.capture()
    assert served.control("POST", "/reset").status_code == 200
    assert served.control("GET", f"/captures/{capture_id}").status_code == 404


def test_throttling_switch_refuses_a_non_boolean(served: SimClient) -> None:
    response = served.control("POST", "/throttling", {"enabled": "yes"})
    assert (response.status_code, error_code(response)) == (400, "InvalidField")
