"""The call log: what tests count, never a credential."""

from __future__ import annotations

from typing import Any

from amazon_pay_sim import Simulator
from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from tests.support.sim import FakeClock, call, refund_params, signed_body


def test_each_call_is_logged_with_action_key_params_and_answer(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    call(sim, clock, "Refund", refund_params(capture_id, "r1", "2.00"))
    call(sim, clock, "Refund", refund_params(capture_id, "r1", "3.00"))
    logged = [(c["action"], c["params"]["RefundReferenceId"], c["status"], c["code"]) for c in sim.calls()]
    assert logged == [("Refund", "r1", 200, None), ("Refund", "r1", 400, "DuplicateRequest")]


def test_the_log_never_holds_the_signature_or_credentials(sim: Simulator, clock: FakeClock) -> None:
    body = signed_body("GetServiceStatus", {}, now=clock())
    call(sim, clock, "GetServiceStatus")
    call(sim, clock, "GetServiceStatus", secret_key="wrong")
    text = repr(sim.calls())
    for secret in (body["Signature"], DEFAULT_SECRET_KEY, DEFAULT_ACCESS_KEY, "wrong"):
        assert secret not in text


def test_reset_forgets_calls_and_captures(sim: Simulator, clock: FakeClock) -> None:
    capture_id = sim.create_capture("100.00", "USD")
    call(sim, clock, "GetServiceStatus")
    sim.reset()
    assert sim.calls() == []
    assert (
        call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": capture_id}).code == "InvalidParameterValue"
    )


def test_reset_keeps_the_sellers(sim: Simulator, clock: FakeClock) -> None:
    sim.add_seller("A2OTHERSELLER", "OTHERKEY", "other-secret")
    sim.reset()
    kw: dict[str, Any] = {
        "seller_id": "A2OTHERSELLER",
        "access_key": "OTHERKEY",
        "secret_key": "other-secret",
    }
    assert call(sim, clock, "GetServiceStatus", **kw).status == 200
