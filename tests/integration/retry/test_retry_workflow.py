"""CONTRACT §6 on the local stack: a ProcessingFailure decline is retried once after the wait, if eligible.

Each test follows one refund through the real handlers: the simulator declines it, its IPN reaches the
IPN handler, the stream publishes `Refund Declined`, the template's rule starts RetryWorkflow (moto's ASL
engine), whose steps run in RetryStepsFunction against the simulator. Execution histories are asserted.
"""

from __future__ import annotations

import json

import pytest

from refunds_local.clients import storefront_of
from refunds_local.stack import EmbeddedStack

from .support import (
    amazon_refunds_on,
    detail_types,
    entered_states,
    executions_of,
    finished_execution,
    processing_failure_note,
    request_refund,
    wait_for_status,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

RETRY_PREFIX = ["WaitBeforeRetry", "CheckEligibility", "IsEligible", "StartAttempt", "AttemptSubmitted"]
NOT_ELIGIBLE = [
    "WaitBeforeRetry",
    "CheckEligibility",
    "IsEligible",
    "RequireManualAction",
    "ManualActionRequired",
]


def test_a_processing_failure_once_is_retried_after_the_wait_and_completes(stack: EmbeddedStack) -> None:
    capture_id = stack.simulator.create_capture("100.00", "USD")
    request_refund(stack, "pf-once", capture_id, processing_failure_note(times=1))

    refund = wait_for_status(stack, "pf-once", "Completed")
    execution = finished_execution(stack, "pf-once-attempt-1")

    assert [
        (a["attempt"], a["refund_reference_id"], a["state"], a["reason_code"]) for a in refund["attempts"]
    ] == [
        (1, "pf-once_1", "Declined", "ProcessingFailure"),
        (2, "pf-once_2", "Completed", None),
    ]
    assert execution["status"] == "SUCCEEDED"
    states = entered_states(stack, execution["executionArn"])
    assert states[: len(RETRY_PREFIX)] == RETRY_PREFIX
    # The IPN resumes the waiting execution; had it come before the token was stored, the stored outcome
    # is read instead. Either way the execution ends in RefundCompleted and nothing fails on the way.
    assert states[len(RETRY_PREFIX) :] in (
        ["AwaitOutcome", "OutcomeReceived", "RefundCompleted"],
        ["AwaitOutcome", "PollOutcome", "OutcomeAfterPoll", "RefundCompleted"],
    )
    assert [e["status"] for e in executions_of(stack, "pf-once")] == ["SUCCEEDED"]
    # Money: one declined and one completed Amazon refund, the ledger counts the amount once.
    at_amazon = sorted((r["refund_reference_id"], r["state"]) for r in amazon_refunds_on(stack, capture_id))
    assert at_amazon == [("pf-once_1", "Declined"), ("pf-once_2", "Completed")]
    assert detail_types(stack, "pf-once") == [
        "Refund Requested",
        "Refund Pending",
        "Refund Declined",
        "Refund Retry Scheduled",
        "Refund Pending",
        "Refund Completed",
    ]


def test_a_refund_no_ipn_reported_found_before_the_retry_is_recorded_and_the_retry_completes(
    stack: EmbeddedStack,
) -> None:
    """The retry's headroom check finds a seller refund whose IPN was lost and records it on the ledger
    (RetryStepsFunction's UpdateItem) before sending the next attempt."""
    capture_id = stack.simulator.create_capture("100.00", "USD")
    request_refund(stack, "pf-unseen", capture_id, processing_failure_note(times=1))
    stack.simulator.set_ipn_url(None)  # this refund's IPN is lost
    unseen = stack.simulator.external_refund(capture_id, "30.00", "SellerInitiated")
    stack.simulator.set_ipn_url(f"{stack.api_url}/ipn")

    refund = wait_for_status(stack, "pf-unseen", "Completed", "ManualActionRequired")
    execution = finished_execution(stack, "pf-unseen-attempt-1")

    assert refund["status"] == "Completed", refund
    assert [(a["attempt"], a["state"]) for a in refund["attempts"]] == [(1, "Declined"), (2, "Completed")]
    assert execution["status"] == "SUCCEEDED"
    ledger = storefront_of(stack).get_capture(capture_id).body
    assert (ledger["external"], ledger["completed"], ledger["available"]) == ("30.00", "10.00", "60.00")
    assert [e["amazon_refund_id"] for e in ledger["external_refunds"]] == [unseen["amazon_refund_id"]]


def test_a_processing_failure_twice_requires_manual_action_and_publishes_it(stack: EmbeddedStack) -> None:
    capture_id = stack.simulator.create_capture("100.00", "USD")
    request_refund(stack, "pf-twice", capture_id, processing_failure_note())

    refund = wait_for_status(stack, "pf-twice", "ManualActionRequired")
    execution = finished_execution(stack, "pf-twice-attempt-1")

    assert refund["reason_code"] == "ProcessingFailure"
    assert [(a["attempt"], a["state"]) for a in refund["attempts"]] == [(1, "Declined"), (2, "Declined")]
    states = entered_states(stack, execution["executionArn"])
    assert execution["status"] == "SUCCEEDED"
    assert states[: len(RETRY_PREFIX)] == RETRY_PREFIX
    assert states[-1] == "AttemptDeclined"
    types = detail_types(stack, "pf-twice")
    assert types.count("Refund Declined") == 2
    assert types[-2:] == ["Refund Declined", "Refund Requires Manual Action"]
    # At most MAX_PROCESSING_FAILURE_RETRIES (1) retry: the second decline starts no execution.
    assert stack.rules is not None
    stack.rules.drain()
    assert [e["name"] for e in executions_of(stack, "pf-twice")] == ["pf-twice-attempt-1"]


def test_an_a_to_z_refund_on_the_capture_means_no_retry_but_manual_action(stack: EmbeddedStack) -> None:
    capture_id = stack.simulator.create_capture("100.00", "USD")
    request_refund(stack, "pf-atoz", capture_id, processing_failure_note())
    stack.simulator.external_refund(capture_id, "30.00", "AmazonA-ZRefund")

    refund = wait_for_status(stack, "pf-atoz", "ManualActionRequired")
    execution = finished_execution(stack, "pf-atoz-attempt-1")

    [claim] = [r for r in amazon_refunds_on(stack, capture_id) if r["refund_type"] == "AmazonA-ZRefund"]
    assert refund["reason_code"] == f"AmazonA-ZRefund found: {claim['amazon_refund_id']}"
    assert [a["attempt"] for a in refund["attempts"]] == [1]
    assert entered_states(stack, execution["executionArn"]) == NOT_ELIGIBLE
    assert "pf-atoz_2" not in {r["refund_reference_id"] for r in amazon_refunds_on(stack, capture_id)}
    assert detail_types(stack, "pf-atoz")[-1] == "Refund Requires Manual Action"


def test_a_closed_capture_means_no_retry_but_manual_action(stack: EmbeddedStack) -> None:
    capture_id = stack.simulator.create_capture("100.00", "USD")
    request_refund(stack, "pf-closed", capture_id, processing_failure_note())
    stack.simulator.close_capture(capture_id)

    refund = wait_for_status(stack, "pf-closed", "ManualActionRequired")
    execution = finished_execution(stack, "pf-closed-attempt-1")

    assert refund["reason_code"] == "Capture Closed"
    assert entered_states(stack, execution["executionArn"]) == NOT_ELIGIBLE
    assert [a["attempt"] for a in refund["attempts"]] == [1]


def test_amazon_rejected_requires_manual_action_and_starts_no_execution(stack: EmbeddedStack) -> None:
    capture_id = stack.simulator.create_capture("100.00", "USD")
    note = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "AmazonRejected"}})
    request_refund(stack, "rejected", capture_id, note)

    refund = wait_for_status(stack, "rejected", "ManualActionRequired")
    assert "Refund Declined" in detail_types(stack, "rejected")  # published, and drained to the rules
    assert stack.rules is not None
    stack.rules.drain()

    assert refund["reason_code"] == "AmazonRejected"
    assert executions_of(stack, "rejected") == []


def test_duplicate_refund_declined_events_start_one_execution(stack: EmbeddedStack) -> None:
    capture_id = stack.simulator.create_capture("100.00", "USD")
    request_refund(stack, "pf-dup", capture_id, processing_failure_note(times=1))
    wait_for_status(stack, "pf-dup", "Completed")
    [declined] = [e for e in stack.events("pf-dup") if e["detail-type"] == "Refund Declined"]

    events = stack.client("events")
    entry = {
        "Source": declined["source"],
        "DetailType": declined["detail-type"],
        "Detail": json.dumps(declined["detail"]),
        "EventBusName": stack.bus_name,
    }
    assert events.put_events(Entries=[entry, entry])["FailedEntryCount"] == 0
    assert stack.rules is not None
    stack.rules.drain()
    again = stack.function("RetryStarterFunction").invoke(declined)

    assert again == {"outcome": "already_started", "execution_name": "pf-dup-attempt-1"}
    assert [e["name"] for e in executions_of(stack, "pf-dup")] == ["pf-dup-attempt-1"]
    assert stack.rules.dead_letters == []
    at_amazon = [r["refund_reference_id"] for r in amazon_refunds_on(stack, capture_id)]
    assert sorted(at_amazon) == ["pf-dup_1", "pf-dup_2"]
