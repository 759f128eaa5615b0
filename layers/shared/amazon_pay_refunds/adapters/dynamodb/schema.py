"""The refunds table's definition: the one place both `create_table` and the template's test read it from.

Keys and indexes are explained in docs/DESIGN.md ("DynamoDB single-table key design").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GSI1 = "gsi1"
TTL_ATTRIBUTE = "expires_at"

# Mirrors template.yaml's RefundsTable (key schema, attributes, GSI, TTL, stream); properties that only
# matter in AWS (deletion protection, PITR, SSE) are left to the template.
TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "gsi1pk", "AttributeType": "S"},
        {"AttributeName": "gsi1sk", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": GSI1,
            "KeySchema": [
                {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
            ],
            # Keys only: a refund's updates while open then never write the index (see DESIGN.md).
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}
TIME_TO_LIVE: dict[str, Any] = {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


def create_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the refunds table (tests and the local stack), waiting until it is active."""
    client.create_table(TableName=table_name, **TABLE_DEFINITION)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=TIME_TO_LIVE)  # type: ignore[arg-type]
