"""The ProcessingFailure retry for an Amazon Pay API v2 refund on the local stack (issue 14): the decline
comes from the simulator's v2 side (our `x-amz-pay-simulation-code` extension), the v2 IPN makes the IPN
handler read it with Get Refund, and RetryWorkflow sends attempt 2 with its own idempotency key."""

from __future__ import annotations

import json

import pytest
import requests

from refunds_local.clients import storefront_of
from refunds_local.stack import EmbeddedStack

from .support import detail_types, entered_states, finished_execution, wait_for_status

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def charge(stack: EmbeddedStack, amount: str) -> str:
    answer = requests.post(
        f"{stack.sim_url}/simulator/charges", json={"amount": amount, "currency_code": "USD"}, timeout=30
    )
    answer.raise_for_status()
    return str(answer.json()["amazon_charge_id"])


def request_v2_refund(stack: EmbeddedStack, refund_id: str, charge_id: str, reason_code: str) -> None:
    note = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": reason_code}})
    body = {
        "refund_id": refund_id,
        "amazon_charge_id": charge_id,
        "amount": "10.00",
        "currency_code": "USD",
        "seller_refund_note": note,
    }
    answer = storefront_of(stack).post_refund(body)
    assert answer.status == 202, answer


def test_a_v2_processing_failure_is_retried_with_a_new_idempotency_key(stack: EmbeddedStack) -> None:
    charge_id = charge(stack, "100.00")
    request_v2_refund(stack, "v2-pf", charge_id, "ProcessingFailure")

    # The simulation code declines every attempt: the retry runs once, then a person is asked.
    refund = wait_for_status(stack, "v2-pf", "ManualActionRequired")
    execution = finished_execution(stack, "v2-pf-attempt-1")

    assert [
        (a["attempt"], a["refund_reference_id"], a["state"], a["reason_code"]) for a in refund["attempts"]
    ] == [
        (1, "v2-pf_1", "Declined", "ProcessingFailure"),
        (2, "v2-pf_2", "Declined", "ProcessingFailure"),
    ]
    assert execution["status"] == "SUCCEEDED"
    states = entered_states(stack, execution["executionArn"])
    assert states[:5] == [
        "WaitBeforeRetry",
        "CheckEligibility",
        "IsEligible",
        "StartAttempt",
        "AttemptSubmitted",
    ]
    calls = requests.get(f"{stack.sim_url}/simulator/v2/calls", timeout=30).json()["calls"]
    keys = [c["idempotency_key"] for c in calls if c["method"] == "POST" and c["status"] == 201
            and str(c["idempotency_key"]).startswith("v2-pf_")]  # fmt: skip
    assert keys == ["v2-pf_1", "v2-pf_2"]
    types = detail_types(stack, "v2-pf")
    assert types.count("Refund Declined") == 2 and types[-1] == "Refund Requires Manual Action"


def test_no_v2_retry_when_others_refunded_on_the_charge(stack: EmbeddedStack) -> None:
    """v2 refunds carry no type: a refund by others on the charge may be an A-to-z or chargeback refund,
    so the retry is not made (conservative), and a person decides."""
    charge_id = charge(stack, "100.00")
    requests.post(
        f"{stack.sim_url}/simulator/charges/{charge_id}/external-refund", json={"amount": "20.00"}, timeout=30
    ).raise_for_status()
    request_v2_refund(stack, "v2-pf-ext", charge_id, "ProcessingFailure")

    refund = wait_for_status(stack, "v2-pf-ext", "ManualActionRequired")

    assert [(a["attempt"], a["state"]) for a in refund["attempts"]] == [(1, "Declined")]
    assert refund["reason_code"] == "Untyped external refund found: v2-refunded-20.00"
