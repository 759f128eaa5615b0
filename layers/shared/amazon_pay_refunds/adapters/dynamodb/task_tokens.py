"""Step Functions task tokens of retry attempts awaiting their outcome, beside the refund they belong to.

Item: `pk = REFUND#{refund_id}`, `sk = TASK_TOKEN#{attempt}`, `task_token`, `expires_at` (TTL). A separate
item rather than an attribute of the refund item, because every refund transition rewrites the refund item
whole (a token stored there would be erased by the very IPN that must find it). The stream filter of the
event publisher only passes `REFUND` and `LEDGER` items, so tokens publish nothing.

Race-free resumption with strongly consistent single-item operations: the workflow writes the token and
then reads the attempt; the IPN handler writes the attempt and then reads the token. Whichever comes
second sees the other's write, so at least one of them sends the outcome (a second send is refused by
Step Functions and ignored).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from amazon_pay_refunds.adapters.dynamodb.items import refund_key
from amazon_pay_refunds.adapters.dynamodb.schema import TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TASK_TOKEN_SK_PREFIX = "TASK_TOKEN#"  # noqa: S105 - a key prefix, not a secret
# Longer than any wait the workflow configures; Step Functions tokens die with their execution anyway.
DEFAULT_TOKEN_TTL = timedelta(days=14)


def task_token_key(refund_id: str, attempt: int) -> dict[str, str]:
    return {"pk": refund_key(refund_id)["pk"], "sk": f"{TASK_TOKEN_SK_PREFIX}{attempt}"}


class TaskTokenStore:
    """Put and get the task token of one attempt (GetItem/PutItem on the refunds table only)."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self.client = client

    def put(
        self,
        refund_id: str,
        attempt: int,
        task_token: str,
        *,
        ttl: timedelta = DEFAULT_TOKEN_TTL,
        now: datetime | None = None,
    ) -> None:
        """Store (or replace: a redriven execution has a new token) the token attempt `attempt` waits with."""
        expires = int(((now or datetime.now(UTC)) + ttl).timestamp())
        key = task_token_key(refund_id, attempt)
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": key["pk"]},
                "sk": {"S": key["sk"]},
                "task_token": {"S": task_token},
                TTL_ATTRIBUTE: {"N": str(expires)},
            },
        )

    def get(self, refund_id: str, attempt: int) -> str | None:
        key = task_token_key(refund_id, attempt)
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if item is None or "task_token" not in item:
            return None
        return str(item["task_token"]["S"])
