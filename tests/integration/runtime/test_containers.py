"""runtime.container: the credentials secret is cached per container (per function on the local stack)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from amazon_pay_refunds import runtime

SECRET = {"default_seller_id": "A1SELLER", "sellers": {"A1SELLER": {"access_key": "ak", "secret_key": "sk"}}}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The container each GetSecretValue the library makes was made for."""
    monkeypatch.setenv("REFUNDS_TABLE", "refunds")
    monkeypatch.setenv("AMAZON_PAY_CREDENTIALS_SECRET", "creds")
    made: list[Any] = []
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="creds", SecretString=json.dumps(SECRET))
        client.meta.events.register(
            "before-call.secrets-manager.GetSecretValue", lambda **_: made.append(runtime.container())
        )
        monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
        runtime.reset()
        yield made
    runtime.reset()


def test_each_container_reads_the_secret_once_and_keeps_it(
    reads: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "container", lambda: "RefundApi")
    assert runtime.default_seller_id() == "A1SELLER"
    assert runtime.default_seller_id() == "A1SELLER"
    assert reads == ["RefundApi"]
    monkeypatch.setattr(runtime, "container", lambda: "IpnHandler")
    assert runtime.seller_credentials(None).access_key == "ak"
    assert reads == ["RefundApi", "IpnHandler"]  # its own read, not RefundApi's cached value
    monkeypatch.setattr(runtime, "container", lambda: "RefundApi")
    assert runtime.default_seller_id() == "A1SELLER"
    assert reads == ["RefundApi", "IpnHandler"]
