"""A moto-emulated refunds table (created from store.schema) and a RefundStore on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from amazon_pay_refunds.adapters.dynamodb import RefundStore, create_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "refunds-test"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> DynamoDBClient:
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def table(dynamodb: DynamoDBClient) -> str:
    create_table(dynamodb, TABLE)
    return TABLE


@pytest.fixture
def store(dynamodb: DynamoDBClient, table: str) -> RefundStore:
    return RefundStore(table, dynamodb)
