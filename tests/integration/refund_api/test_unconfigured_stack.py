"""Right after the first deploy the credentials secret exists without a value: the API says so (503).

Not a 500 with a stack trace: the storefront learns that the service is not configured yet and that
nothing was stored, and the operator sees what to do (store the secret's value, docs/DEPLOY.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest

from amazon_pay_refunds import runtime
from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from tests.support.refund_api_stack import (
    SECRET_NAME,
    SELLER_ID,
    Api,
    refund_body,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def empty_secret(aws: None) -> None:
    """The secret as the stack creates it: it exists, with no value (no AWSCURRENT version)."""
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)
    client.create_secret(Name=SECRET_NAME, Description="filled in by the operator after the first deploy")
    runtime.reset()


def test_a_refund_before_the_credentials_are_stored_is_503_service_not_configured(
    empty_secret: None, api: Api, capture: Callable[..., str]
) -> None:
    answer = api.post_refund(refund_body(capture()))
    assert (answer.status, answer.error_code) == (503, "ServiceNotConfigured"), answer.body
    message = answer.body["error"]["message"]
    assert "credentials" in message and "nothing was stored" in message
    assert api.get_refund("ord-1001-r1").status == 404


def test_a_secret_that_is_not_the_documented_json_is_503_too_and_reveals_nothing(
    aws: None, api: Api, capture: Callable[..., str]
) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.put_secret_value(SecretId=SECRET_NAME, SecretString='{"sellers": "AKIA-LEAKED-IF-ECHOED"}')
    runtime.reset()
    answer = api.post_refund(refund_body(capture()))
    assert (answer.status, answer.error_code) == (503, "ServiceNotConfigured"), answer.body
    assert "AKIA-LEAKED-IF-ECHOED" not in str(answer.body)


def test_once_the_secret_has_its_value_the_same_request_is_accepted(
    empty_secret: None, api: Api, capture: Callable[..., str]
) -> None:
    body = refund_body(capture())
    assert api.post_refund(body).status == 503
    client = boto3.client("secretsmanager", region_name="us-east-1")
    value = {"sellers": {SELLER_ID: {"access_key": DEFAULT_ACCESS_KEY, "secret_key": DEFAULT_SECRET_KEY}}}
    client.put_secret_value(SecretId=SECRET_NAME, SecretString=json.dumps(value))
    runtime.reset()
    assert api.post_refund(body).status == 202
