"""The stream pump: table stream → EventPublisher (template's filter, batch failures) → bus → events()."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    AttemptOutcome,
    apply_observation,
    request_refund,
)
from amazon_pay_refunds.core.models import AttemptState, Refund, request_fingerprint
from refunds_local.stack import EmbeddedStack
from refunds_local.streams import matches

from .handlers import StreamRecorder

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CAPTURE = "S01-1234567-1234567-C000001"
AMAZON_REFUND = "S01-1234567-1234567-R000001"


def new_refund(refund_id: str = "ord-1001-r1", amount: str = "12.50") -> Refund:
    body = {"refund_id": refund_id, "amount": amount, "currency_code": "USD"}
    return request_refund(
        refund_id=refund_id,
        seller_id="A1LOCALSELLER",
        amazon_capture_id=CAPTURE,
        amount=Decimal(amount),
        currency_code="USD",
        seller_refund_note="Returned item",
        soft_descriptor="Returns",
        metadata={"order_id": "1001"},
        request_fingerprint=request_fingerprint(body),
        at=T0,
    ).refund


def complete_a_refund(store: RefundStore, refund_id: str = "ord-1001-r1") -> None:
    store.create_refund_with_reservation(
        new_refund(refund_id), LedgerSeed(CAPTURE, "A1LOCALSELLER", "USD", Decimal("100.00"))
    )
    store.transition(
        refund_id,
        lambda r: apply_observation(r, AttemptAccepted(1, AMAZON_REFUND), at=T0 + timedelta(seconds=1)),
    )
    store.transition(
        refund_id,
        lambda r: apply_observation(
            r,
            AttemptOutcome(AttemptState.COMPLETED, "ipn:n1", amazon_refund_id=AMAZON_REFUND),
            at=T0 + timedelta(seconds=2),
        ),
    )


@pytest.fixture
def store(stack: EmbeddedStack) -> RefundStore:
    return RefundStore(stack.table_name, stack.client("dynamodb"))


def test_stored_transitions_are_published_through_the_real_event_publisher(
    stack: EmbeddedStack, store: RefundStore
) -> None:
    complete_a_refund(store)
    stack.drain()
    events = stack.events("ord-1001-r1")
    assert [e["detail-type"] for e in events] == ["Refund Requested", "Refund Pending", "Refund Completed"]
    assert {e["source"] for e in events} == {"amazon-pay-refunds"}
    assert events[-1]["detail"]["status"] == "Completed"
    assert events[-1]["detail"]["previous_status"] == "Pending"
    assert stack.dead_letters == []
    stack.drain()
    assert len(stack.events("ord-1001-r1")) == 3  # nothing published twice


def test_the_background_pump_publishes_without_drain() -> None:
    with EmbeddedStack(port=0, sim_port=0, pump_interval=0.05) as stack:
        complete_a_refund(RefundStore(stack.table_name, stack.client("dynamodb")), "ord-bg")
        deadline = time.monotonic() + 15
        while len(stack.events("ord-bg", drain=False)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [e["detail-type"] for e in stack.events("ord-bg", drain=False)] == [
            "Refund Requested",
            "Refund Pending",
            "Refund Completed",
        ]


@pytest.fixture
def recorder(stack: EmbeddedStack) -> StreamRecorder:
    recording = StreamRecorder()
    stack.function("EventPublisherFunction").override(recording)
    return recording


def test_records_have_lambdas_stream_event_shape_and_pass_the_templates_filter(
    stack: EmbeddedStack, store: RefundStore, recorder: StreamRecorder
) -> None:
    store.create_refund_with_reservation(
        new_refund(), LedgerSeed(CAPTURE, "A1LOCALSELLER", "USD", Decimal("100.00"))
    )
    store.record_ipn_once("notification-1", timedelta(days=1))  # sk IPN: filtered out
    dynamodb = stack.client("dynamodb")
    dynamodb.delete_item(
        TableName=stack.table_name, Key={"pk": {"S": "REFUND#ord-1001-r1"}, "sk": {"S": "REFUND"}}
    )
    stack.drain()
    delivered = recorder.delivered
    kinds = {(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in delivered}
    assert {("INSERT", "REFUND"), ("INSERT", "LEDGER")} <= kinds
    assert {name for name, _ in kinds} <= {"INSERT", "MODIFY"}
    assert {sk for _, sk in kinds} <= {"REFUND", "LEDGER"}
    # The stream itself holds the IPN item's INSERT and the refund's REMOVE: the filter dropped exactly them.
    assert [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in raw_stream(stack)] == [
        *[(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in delivered],
        ("INSERT", "IPN"),
        ("REMOVE", "REFUND"),
    ]
    record = next(r for r in delivered if r["dynamodb"]["Keys"]["sk"]["S"] == "REFUND")
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == stack.stream_arn
    assert record["eventID"]
    change = record["dynamodb"]
    assert change["Keys"] == {"pk": {"S": "REFUND#ord-1001-r1"}, "sk": {"S": "REFUND"}}
    assert change["NewImage"]["pk"] == {"S": "REFUND#ord-1001-r1"}
    assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert change["SequenceNumber"]
    assert isinstance(change["ApproximateCreationDateTime"], int)
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in delivered]
    assert sequence == sorted(sequence)


def raw_stream(stack: EmbeddedStack) -> list[dict[str, Any]]:
    streams = stack.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stack.stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stack.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    return list(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def put_items(stack: EmbeddedStack, count: int) -> None:
    dynamodb = stack.client("dynamodb")
    for n in range(count):
        dynamodb.put_item(
            TableName=stack.table_name,
            Item={"pk": {"S": f"REFUND#r{n}"}, "sk": {"S": "REFUND"}, "n": {"N": str(n)}},
        )


def numbers(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in records]


def test_records_after_a_cancelled_transaction_are_still_delivered(
    stack: EmbeddedStack, recorder: StreamRecorder
) -> None:
    put_items(stack, 1)
    assert stack.pump is not None
    stack.pump.pump_once()  # the pump has read the stream before the cancellation
    dynamodb = stack.client("dynamodb")
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": stack.table_name,
                        "Key": {"pk": {"S": "REFUND#absent"}, "sk": {"S": "REFUND"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            ]
        )
    dynamodb.put_item(
        TableName=stack.table_name, Item={"pk": {"S": "REFUND#r1"}, "sk": {"S": "REFUND"}, "n": {"N": "1"}}
    )
    stack.drain()
    assert numbers(recorder.delivered) == [0, 1]


def test_batch_item_failures_are_redelivered_from_the_first_failed_record(
    stack: EmbeddedStack, recorder: StreamRecorder
) -> None:
    def fail_third_record_once(batch: list[dict[str, Any]], call: int) -> list[str]:
        return [batch[2]["dynamodb"]["SequenceNumber"]] if call == 0 else []

    recorder.fail = fail_third_record_once
    put_items(stack, 5)
    stack.drain()
    assert [numbers(batch) for batch in recorder.batches] == [[0, 1, 2, 3, 4], [2, 3, 4]]
    assert stack.dead_letters == []


def test_records_still_failing_after_the_retries_go_to_the_dead_letters(
    stack: EmbeddedStack, recorder: StreamRecorder
) -> None:
    recorder.fail = lambda batch, call: [
        r["dynamodb"]["SequenceNumber"] for r in batch if numbers([r]) == [1]
    ]
    put_items(stack, 3)
    stack.drain()
    retries = stack.stream_mapping.maximum_retry_attempts
    assert retries == 5  # the template's MaximumRetryAttempts
    assert [numbers(batch) for batch in recorder.batches] == [[0, 1, 2]] + [[1, 2]] * retries
    [dead] = stack.dead_letters
    assert numbers(dead.records) == [1, 2]
    put_items(stack, 0)
    assert stack.drain() == 0


def test_a_raising_function_is_bisected_then_retried(stack: EmbeddedStack, recorder: StreamRecorder) -> None:
    recorder.raise_on = lambda batch, call: 1 in numbers(batch)
    put_items(stack, 2)
    stack.drain()
    batches = [numbers(batch) for batch in recorder.batches]
    assert batches[:3] == [[0, 1], [0], [1]]
    assert batches[3:] == [[1]] * stack.stream_mapping.maximum_retry_attempts
    assert [numbers(d.records) for d in stack.dead_letters] == [[1]]


def test_filter_patterns() -> None:
    pattern = {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["REFUND", "LEDGER"]}}}}
    record = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "x"}, "sk": {"S": "REFUND"}}}}
    assert matches(pattern, record)
    assert not matches(pattern, {**record, "eventName": "REMOVE"})
    assert not matches(pattern, {"eventName": "INSERT", "dynamodb": {"Keys": {"sk": {"S": "IPN"}}}})
    assert not matches(pattern, {"eventName": "INSERT"})
    assert matches({"a": [{"prefix": "RE"}]}, {"a": "REFUND"})
    assert matches({"a": [{"exists": False}]}, {})
    assert matches({"a": [{"anything-but": ["x"]}]}, {"a": "y"})
    assert matches({"a": [{"numeric": [">", 1, "<=", 3]}]}, {"a": 3})
    assert not matches({"a": [{"numeric": [">", 1, "<=", 3]}]}, {"a": 4})
