"""The outbox: the table's stream → EventPublisher → EventBridge, read back through a rule into SQS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from amazon_pay_refunds import runtime
from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    AttemptOutcome,
    ManualActionRequired,
    ResolvedOutOfBand,
    apply_observation,
)
from amazon_pay_refunds.core.models import AttemptState
from amazon_pay_refunds.events import publish_stream_records
from functions.event_publisher import app

from .support import CAPTURE_ID, at, refund, seed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BUS = "refunds-bus"
R1 = "S01-1234567-1234567-R000001"


@dataclass
class FakeContext:
    function_name: str = "EventPublisher"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:EventPublisher"
    aws_request_id: str = "req-1"


@pytest.fixture
def queue_url(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Everything on the bus with source amazon-pay-refunds lands in an SQS queue."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name=BUS)
    url: str = sqs.create_queue(QueueName="published")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["amazon-pay-refunds"]}))
    events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("REFUNDS_TABLE", "refunds")
    monkeypatch.setenv("AMAZON_PAY_CREDENTIALS_SECRET", "amazon-pay/credentials")
    # The handler module was imported before the test environment existed; Lambda sets it before import.
    monkeypatch.setattr(app.metrics, "namespace", "AmazonPayRefunds")
    runtime.reset()
    return url


def stream_records(dynamodb: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    # Current botocore routes stream calls to an account endpoint moto does not serve: name the classic one.
    streams = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com",
    )
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return list(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def published(queue_url: str) -> Iterator[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        for message in messages:
            yield json.loads(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def run_publisher(dynamodb: DynamoDBClient, table: str) -> dict[str, Any]:
    answer: dict[str, Any] = app.lambda_handler({"Records": stream_records(dynamodb, table)}, FakeContext())
    return answer


def happy_path(store: RefundStore) -> None:
    store.create_refund_with_reservation(refund(), seed())
    store.transition("ord-1001-r1", lambda r: apply_observation(r, AttemptAccepted(1, R1), at=at(1)))
    store.transition(
        "ord-1001-r1",
        lambda r: apply_observation(
            r, AttemptOutcome(AttemptState.COMPLETED, "ipn:n1", amazon_refund_id=R1), at=at(2)
        ),
    )


def test_each_stored_transition_is_published_once_in_order(
    store: RefundStore, dynamodb: DynamoDBClient, table: str, queue_url: str
) -> None:
    happy_path(store)
    answer = run_publisher(dynamodb, table)
    events = list(published(queue_url))
    assert answer == {"batchItemFailures": []}
    assert [e["detail-type"] for e in events] == ["Refund Requested", "Refund Pending", "Refund Completed"]


def test_event_detail_is_the_refund_resource_with_previous_status(
    store: RefundStore, dynamodb: DynamoDBClient, table: str, queue_url: str
) -> None:
    happy_path(store)
    run_publisher(dynamodb, table)
    completed = next(e for e in published(queue_url) if e["detail-type"] == "Refund Completed")
    assert completed["source"] == "amazon-pay-refunds"
    detail = completed["detail"]
    assert (detail["refund_id"], detail["status"], detail["previous_status"], detail["amount"]) == (
        "ord-1001-r1",
        "Completed",
        "Pending",
        "12.50",
    )
    assert detail["history"][-1] == {
        "at": "2024-05-01T12:00:02.000Z",
        "from": "Pending",
        "to": "Completed",
        "cause": "ipn:n1",
    }


def test_decline_publishes_refund_declined_with_reason_then_the_new_status(
    store: RefundStore, dynamodb: DynamoDBClient, table: str, queue_url: str
) -> None:
    store.create_refund_with_reservation(refund(), seed())
    store.transition("ord-1001-r1", lambda r: apply_observation(r, AttemptAccepted(1, R1), at=at(1)))
    store.transition(
        "ord-1001-r1",
        lambda r: apply_observation(
            r,
            AttemptOutcome(AttemptState.DECLINED, "ipn:n1", "ProcessingFailure", amazon_refund_id=R1),
            at=at(2),
        ),
    )
    run_publisher(dynamodb, table)
    events = [(e["detail-type"], e["detail"]["reason_code"]) for e in published(queue_url)][2:]
    assert events == [
        ("Refund Declined", "ProcessingFailure"),
        ("Refund Retry Scheduled", "ProcessingFailure"),
    ]


def test_out_of_band_resolution_carries_method_and_note(
    store: RefundStore, dynamodb: DynamoDBClient, table: str, queue_url: str
) -> None:
    store.create_refund_with_reservation(refund(), seed())
    store.transition(
        "ord-1001-r1", lambda r: apply_observation(r, ManualActionRequired("X", "reconciler:stuck"), at=at(1))
    )
    store.transition(
        "ord-1001-r1", lambda r: apply_observation(r, ResolvedOutOfBand("gift_card", "GC-1"), at=at(2))
    )
    run_publisher(dynamodb, table)
    last = list(published(queue_url))[-1]
    assert (last["detail-type"], last["detail"]["resolution"]) == (
        "Refund Resolved Out Of Band",
        {"method": "gift_card", "note": "GC-1"},
    )


def test_writes_without_a_new_transition_publish_nothing(
    store: RefundStore, dynamodb: DynamoDBClient, table: str, queue_url: str
) -> None:
    happy_path(store)
    store.record_ipn_once("n-dup", __import__("datetime").timedelta(days=1))
    store.transition(  # a late Pending IPN: recorded on the refund, no transition
        "ord-1001-r1",
        lambda r: apply_observation(
            r, AttemptOutcome(AttemptState.PENDING, "ipn:n0", amazon_refund_id=R1), at=at(3)
        ),
    )
    run_publisher(dynamodb, table)
    assert len(list(published(queue_url))) == 3


def test_external_refund_recorded_on_the_ledger_is_published(
    store: RefundStore, dynamodb: DynamoDBClient, table: str, queue_url: str
) -> None:
    store.create_refund_with_reservation(refund(amount="10.00"), seed("100.00"))
    store.record_external_refund(CAPTURE_ID, "S01-X-R9", Decimal("25.00"), "USD", "AmazonA-ZRefund", at=at(5))
    store.record_external_refund(CAPTURE_ID, "S01-X-R9", Decimal("25.00"), "USD", "AmazonA-ZRefund", at=at(6))
    run_publisher(dynamodb, table)
    external = [e for e in published(queue_url) if e["detail-type"] == "External Refund Detected"]
    assert [
        (e["detail"]["amazon_refund_id"], e["detail"]["amount"], e["detail"]["available"]) for e in external
    ] == [("S01-X-R9", "25.00", "65.00")]


def test_an_external_refund_that_settles_or_is_declined_is_published_once_per_change(
    store: RefundStore, dynamodb: DynamoDBClient, table: str, queue_url: str
) -> None:
    """A refund by others recorded Pending (a v2 IPN) that Amazon later declines: the storefront and the
    operator learn it (it no longer counts against the charge), once however often the change is applied."""
    store.create_refund_with_reservation(refund(amount="10.00"), seed("100.00"))
    store.record_external_refund(
        CAPTURE_ID, "S01-X-R9", Decimal("25.00"), "USD", "Untyped", at=at(5), state="Pending"
    )
    assert store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Declined", at=at(6))
    assert not store.update_external_refund_state(CAPTURE_ID, "S01-X-R9", "Declined", at=at(7))
    run_publisher(dynamodb, table)
    events = [e for e in published(queue_url) if e["detail-type"].startswith("External Refund")]
    assert [(e["detail-type"], e["detail"]["state"]) for e in events] == [
        ("External Refund Detected", "Pending"),
        ("External Refund Updated", "Declined"),
    ]
    updated = events[1]["detail"]
    assert (updated["event_id"], updated["previous_state"], updated["updated_at"], updated["available"]) == (
        f"{CAPTURE_ID}/external/S01-X-R9/declined",
        "Pending",
        "2024-05-01T12:00:06.000Z",
        "90.00",
    )


def test_a_chargeback_recorded_on_a_charge_permission_is_published_once(
    store: RefundStore, dynamodb: DynamoDBClient, table: str, queue_url: str
) -> None:
    permission = "S01-1234567-1234567"
    store.record_chargeback("A1EXAMPLE", permission, f"{permission}-B000001", at=at(5))
    store.record_chargeback("A1EXAMPLE", permission, f"{permission}-B000001", at=at(6))  # redelivered
    store.record_chargeback("A1EXAMPLE", permission, f"{permission}-B000002", at=at(7))
    run_publisher(dynamodb, table)
    recorded = [e for e in published(queue_url) if e["detail-type"] == "Chargeback Recorded"]
    assert sorted((e["detail"]["chargeback_id"], e["detail"]["event_id"]) for e in recorded) == [
        (f"{permission}-B000001", f"{permission}/chargeback/{permission}-B000001"),
        (f"{permission}-B000002", f"{permission}/chargeback/{permission}-B000002"),
    ]
    assert {(e["detail"]["seller_id"], e["detail"]["charge_permission_id"]) for e in recorded} == {
        ("A1EXAMPLE", permission)
    }


class FailingAfter:
    """An EventBridge stand-in that accepts the first `accepted` entries, then reports a failed entry."""

    def __init__(self, accepted: int) -> None:
        self.accepted = accepted
        self.seen = 0
        self.batch_sizes: list[int] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batch_sizes.append(len(Entries))
        results = []
        for _ in Entries:
            self.seen += 1
            ok = self.seen <= self.accepted
            results.append({"EventId": f"e{self.seen}"} if ok else {"ErrorCode": "InternalFailure"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_a_failed_entry_reports_its_record_and_all_later_ones_for_redelivery(
    store: RefundStore, dynamodb: DynamoDBClient, table: str
) -> None:
    happy_path(store)
    records = stream_records(dynamodb, table)
    refund_records = [
        r["dynamodb"]["SequenceNumber"] for r in records if r["dynamodb"]["Keys"]["sk"]["S"] == "REFUND"
    ]
    result = publish_stream_records(FailingAfter(accepted=1), BUS, records)  # type: ignore[arg-type]
    failed_from = records.index(
        next(r for r in records if r["dynamodb"]["SequenceNumber"] == refund_records[1])
    )
    assert result.failed == [r["dynamodb"]["SequenceNumber"] for r in records[failed_from:]]


def test_events_are_sent_in_batches_of_at_most_ten(
    store: RefundStore, dynamodb: DynamoDBClient, table: str
) -> None:
    for number in range(12):
        store.create_refund_with_reservation(refund(f"r{number}", "1.00"), seed())
    client = FailingAfter(accepted=100)
    result = publish_stream_records(client, BUS, stream_records(dynamodb, table))  # type: ignore[arg-type]
    assert (client.batch_sizes, result.published, result.failed) == ([10, 2], 12, [])
