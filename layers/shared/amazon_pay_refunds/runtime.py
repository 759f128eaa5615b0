"""Per-container wiring shared by the Lambda handlers: settings, AWS clients, the store, Amazon Pay.

Everything is built lazily on first use and kept for the life of a warm container, so that importing a
handler does no I/O (cold start) and a warm invocation does no set-up. `reset()` forgets it all: the local
stack and tests call it when they point the process at another endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from .adapters.dynamodb import RefundStore
from .adapters.dynamodb.task_tokens import TaskTokenStore
from .adapters.mws.client import AmazonPayClient
from .adapters.mws.credentials import (
    CredentialsBook,
    InvalidCredentialsSecret,
    PayV2Credentials,
    SellerCredentials,
    parse_credentials_secret,
)
from .config import CredentialsNotConfigured, Settings, load_settings

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_stepfunctions import SFNClient

    from .adapters.pay_v2.port import PayV2AmazonPay
    from .composition import AmazonPayRouter

# Rotated credentials reach a warm container within this many seconds.
CREDENTIALS_MAX_AGE_SECONDS = 300


@cache
def settings() -> Settings:
    return load_settings()


def _one_container() -> Hashable:
    return None


# Whose cache a read fills. In Lambda a process is one function's container; the local stack runs every
# function in one process and tells them apart here, so that a secret one function read never serves
# another (whose role may not read it).
container: Callable[[], Hashable] = _one_container


@cache
def _secrets_provider(container_id: Hashable = None) -> parameters.SecretsProvider:
    # A client of the default session, like every other AWS client here (Powertools would otherwise
    # build a session of its own).
    return parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))


def credentials_book() -> CredentialsBook:
    """The credentials secret, through Powertools Parameters' cache (one read per max age).

    Raises CredentialsNotConfigured while the secret has no value (a new stack) or is not the documented
    JSON: the operator's step, not a failure of the service (the API answers 503 ServiceNotConfigured).
    """
    name = settings().credentials_secret
    try:
        raw: Any = _secrets_provider(container()).get(name, max_age=CREDENTIALS_MAX_AGE_SECONDS)
    except GetParameterError as error:
        if not _has_no_value(error):
            raise
        raise CredentialsNotConfigured(f"the credentials secret {name} has no value yet") from None
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    try:
        return parse_credentials_secret(text)
    except InvalidCredentialsSecret as invalid:
        raise CredentialsNotConfigured(f"the credentials secret {name} is not usable: {invalid}") from None


def _has_no_value(error: GetParameterError) -> bool:
    """Secrets Manager's answer for a secret without an AWSCURRENT version (kept as the context)."""
    cause = error.__cause__ or error.__context__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == (
        "ResourceNotFoundException"
    )


def seller_credentials(seller_id: str | None) -> SellerCredentials:
    return credentials_book().for_seller(seller_id)


def v2_seller_credentials(seller_id: str | None) -> PayV2Credentials:
    return credentials_book().for_v2_seller(seller_id)


def default_seller_id() -> str:
    return credentials_book().default_seller_id


@cache
def store() -> RefundStore:
    return RefundStore(settings().refunds_table)


@cache
def mws_client() -> AmazonPayClient:
    return AmazonPayClient(seller_credentials, settings().amazon_pay_endpoint)


@cache
def pay_v2() -> PayV2AmazonPay:
    """Amazon Pay API v2 as the port speaks it (built, and its keys read, only when a v2 call is made)."""
    from .adapters.pay_v2.client import PayV2Client
    from .adapters.pay_v2.port import PayV2AmazonPay

    endpoint = settings().pay_v2_endpoint
    return PayV2AmazonPay(PayV2Client(v2_seller_credentials, endpoint), sandbox=settings().amazon_pay_sandbox)


@cache
def amazon_pay() -> AmazonPayRouter:
    """Amazon Pay for both APIs (composition.AmazonPayRouter dispatches on the target's API)."""
    from .composition import AmazonPayRouter

    return AmazonPayRouter(mws_client, pay_v2)


@cache
def task_tokens() -> TaskTokenStore:
    """The RetryWorkflow's task tokens, on the refunds table (the store's client)."""
    refunds = store()
    return TaskTokenStore(refunds.table_name, refunds.client)


@cache
def events_client() -> EventBridgeClient:
    return boto3.client("events")


@cache
def stepfunctions_client() -> SFNClient:
    return boto3.client("stepfunctions")


def reset() -> None:
    """Forget every cached object (tests and the local stack, when the environment changes)."""
    for cached in (
        settings,
        _secrets_provider,
        store,
        task_tokens,
        amazon_pay,
        mws_client,
        pay_v2,
        events_client,
        stepfunctions_client,
    ):
        cached.cache_clear()
