"""The table is created from store.schema, and refund items stay small enough for the write budget."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.adapters.dynamodb.items import ledger_to_item, refund_to_item
from amazon_pay_refunds.adapters.dynamodb.schema import GSI1, TABLE_DEFINITION
from amazon_pay_refunds.core.lifecycle import AttemptAccepted, AttemptOutcome, apply_observation
from amazon_pay_refunds.core.models import AttemptState, Refund

from .support import T0, at, refund, seed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

R1 = "S01-1234567-1234567-R000001"
ONE_WRITE_UNIT = 1024


def test_table_has_the_defined_keys_index_and_stream(dynamodb: DynamoDBClient, table: str) -> None:
    described = dynamodb.describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == TABLE_DEFINITION["KeySchema"]
    assert [
        (i["IndexName"], i["KeySchema"], i["Projection"]) for i in described["GlobalSecondaryIndexes"]
    ] == [(GSI1, TABLE_DEFINITION["GlobalSecondaryIndexes"][0]["KeySchema"], {"ProjectionType": "KEYS_ONLY"})]
    assert described["StreamSpecification"] == TABLE_DEFINITION["StreamSpecification"]


def test_table_expires_ipn_records_by_ttl(dynamodb: DynamoDBClient, table: str) -> None:
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB item size: names plus values (numbers ~ digits/2 + 1; maps, lists +3 and +1 per element)."""

    def size(value: Any) -> int:
        if isinstance(value, str):
            return len(value.encode())
        if isinstance(value, bool) or value is None:
            return 1
        if isinstance(value, int | Decimal):
            return len(str(value).replace(".", "").replace("-", "").lstrip("0")) // 2 + 2
        if isinstance(value, dict):
            return 3 + sum(len(k.encode()) + size(v) + 1 for k, v in value.items())
        if isinstance(value, list | tuple):
            return 3 + sum(size(v) + 1 for v in value)
        if isinstance(value, set | frozenset):
            return sum(size(v) for v in value)
        raise TypeError(type(value))

    return sum(len(name.encode()) + size(value) for name, value in item.items())


def happy_path_refund() -> list[Refund]:
    requested = refund(refund_id="ord-1001-r1-abcdefghijklmno", note="Returned item: blue shirt, size M")
    pending = apply_observation(requested, AttemptAccepted(1, R1), at=at(1)).refund
    completed = apply_observation(
        pending,
        AttemptOutcome(AttemptState.COMPLETED, "ipn:P01-1234567-1234567-000001", amazon_refund_id=R1),
        at=at(9),
    ).refund
    return [requested, pending, completed]


def test_refund_item_stays_within_one_write_unit_along_the_happy_path() -> None:
    assert [item_size(refund_to_item(r)) <= ONE_WRITE_UNIT for r in happy_path_refund()] == [True, True, True]


def test_ledger_item_with_ten_refunds_stays_within_one_write_unit() -> None:
    from amazon_pay_refunds.core.ledger import open_ledger, reserve

    ledger = open_ledger(seed("1000.00"), T0)
    for number in range(10):
        ledger = reserve(ledger, f"ord-1001-refund-{number:02d}-abcdefghij", Decimal("10.00"), "USD")
    assert item_size(ledger_to_item(ledger, T0)) <= ONE_WRITE_UNIT


def test_happy_path_writes_the_refund_three_times_and_the_ledger_once(
    store: RefundStore, dynamodb: DynamoDBClient
) -> None:
    calls: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb.*",
        lambda model, **_: calls.append(model.name) if _is_write(model.name) else None,
    )
    requested, pending, completed = happy_path_refund()
    created = store.create_refund_with_reservation(requested, seed())
    after_pending = store.apply(created, pending, None)
    store.apply(after_pending, completed, None)
    assert calls == ["TransactWriteItems", "PutItem", "PutItem"]


def _is_write(operation: str) -> bool:
    return operation in {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
