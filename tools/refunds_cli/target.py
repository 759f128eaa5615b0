"""Which deployment a refunds command works on: a deployed stack, its table and secret, or the local stack.

- `--stack-name NAME`: the table and the credentials secret are the stack's `RefundsTable` and
  `CredentialsSecret` resources, the Amazon Pay region, sandbox flag and refund policy its parameters;
- `--table NAME [--secret NAME]`: named directly (Amazon Pay settings then from `--amazon-pay-*`);
- `--local`: the running `refunds-local` (its state file, see refunds_local.state_file).

AWS credentials come from the usual chain (environment, profile, SSO, instance role); `--region` as usual.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.adapters.mws.client import AmazonPayClient
from amazon_pay_refunds.adapters.mws.credentials import (
    CredentialsBook,
    SellerCredentials,
    parse_credentials_secret,
)
from amazon_pay_refunds.adapters.mws.endpoints import Endpoint, endpoint_for
from amazon_pay_refunds.composition import Services
from amazon_pay_refunds.config import REGIONS, Settings
from amazon_pay_refunds.use_cases.reconciliation import Reconciler
from amazon_pay_refunds.use_cases.refund_requests import RefundService
from refunds_local.state_file import LocalStateError, read_state

EXIT_OK = 0
EXIT_REFUSED = 1  # not found, refused, or failed
EXIT_USAGE = 2

TABLE_RESOURCE = "RefundsTable"
SECRET_RESOURCE = "CredentialsSecret"  # noqa: S105 - a logical resource id


class UsageError(Exception):
    """The command line does not say enough (exit 2)."""


class TargetNotFound(Exception):
    """The named stack, table or local stack is not there (exit 1)."""


def add_deployment_arguments(parser: argparse.ArgumentParser, *, command: bool) -> None:
    """The global options naming the deployment, and `--json`: on the program and on each command.

    On a command their default is SUPPRESS, so that an option given before the command (`refunds --local
    list`) is not overwritten by the command's default, and one given after it (`refunds list --local`)
    wins.
    """
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if command else {}
    where = parser.add_argument_group("deployment (one of --stack-name, --table, --local)")
    where.add_argument(
        "--stack-name", metavar="NAME", help="a deployed CloudFormation stack of this service", **default
    )
    where.add_argument(
        "--table", metavar="NAME", help="the refunds table (instead of --stack-name)", **default
    )
    where.add_argument(
        "--secret", metavar="NAME", help="the Amazon Pay credentials secret (with --table)", **default
    )
    where.add_argument("--local", action="store_true", help="the running `refunds-local`", **default)
    where.add_argument(
        "--region", metavar="REGION", help="the AWS region (default: your AWS configuration)", **default
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output", **default)


def add_target_arguments(parser: argparse.ArgumentParser, *, amazon_pay: bool = False) -> None:
    """A command's deployment options; with `amazon_pay`, also how to reach Amazon Pay without a stack."""
    add_deployment_arguments(parser, command=True)
    if amazon_pay:
        direct = parser.add_argument_group("Amazon Pay and refund policy with --table (a stack says its own)")
        direct.add_argument("--amazon-pay-region", choices=REGIONS, help="the sellers' Amazon Pay region")
        direct.add_argument(
            "--amazon-pay-sandbox", choices=("true", "false"), help="'true': the sandbox; 'false': live"
        )
        direct.add_argument("--max-processing-failure-retries", type=int, default=1, metavar="N")
        direct.add_argument("--retry-delay-seconds", type=int, default=90, metavar="S")
        direct.add_argument("--allow-amazon-over-refund", action="store_true")


@dataclass
class Target:
    """A deployment's refunds table (and secret and Amazon Pay endpoint, for commands that call Amazon)."""

    table: str
    session: boto3.Session
    secret: str | None = None
    endpoint_url: str | None = None
    amazon_pay_endpoint: Endpoint | None = None
    retry_delay_seconds: int = 90
    max_processing_failure_retries: int = 1
    allow_over_refund: bool = False
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]
        return self._clients[service]

    @cached_property
    def store(self) -> RefundStore:
        return RefundStore(self.table, self.client("dynamodb"))

    @cached_property
    def credentials_book(self) -> CredentialsBook:
        if not self.secret:
            raise UsageError("this command calls Amazon Pay: name the credentials secret (--secret)")
        answer = self.client("secretsmanager").get_secret_value(SecretId=self.secret)
        return parse_credentials_secret(str(answer["SecretString"]))

    def seller_credentials(self, seller_id: str | None) -> SellerCredentials:
        return self.credentials_book.for_seller(seller_id)

    @cached_property
    def amazon_pay(self) -> AmazonPayClient:
        if self.amazon_pay_endpoint is None:
            raise UsageError(
                "this command calls Amazon Pay: with --table, give --amazon-pay-region and"
                " --amazon-pay-sandbox too"
            )
        return AmazonPayClient(self.seller_credentials, self.amazon_pay_endpoint)

    def services(self) -> Services:
        """The services through the composition root, over this target's adapters. Reading and resolving
        need no Amazon Pay settings: Amazon Pay is set up only when a call needs it."""
        settings = Settings(
            refunds_table=self.table,
            event_bus_name="default",
            amazon_pay_region="us",
            amazon_pay_sandbox=True,
            credentials_secret=self.secret or "",
            seller_ids=frozenset(),
            ipn_topic_arns=frozenset(),
            retry_delay_seconds=self.retry_delay_seconds,
            max_processing_failure_retries=self.max_processing_failure_retries,
            allow_over_refund=self.allow_over_refund,
        )
        return Services(
            settings,
            store=lambda: self.store,
            amazon_pay=lambda: self.amazon_pay,
            seller_credentials=self.seller_credentials,
        )

    def refund_requests(self) -> RefundService:
        return self.services().refund_requests()

    def reconciler(self) -> Reconciler:
        return self.services().reconciler()


SessionFactory = Callable[..., boto3.Session]


def resolve_target(args: argparse.Namespace, *, session_factory: SessionFactory = boto3.Session) -> Target:
    """The deployment the options name. Raises UsageError or TargetNotFound."""
    chosen = [name for name in ("stack_name", "table", "local") if getattr(args, name, None)]
    if len(chosen) != 1:
        raise UsageError("name the deployment with exactly one of --stack-name, --table or --local")
    if args.secret and not args.table:
        raise UsageError("--secret goes with --table (a stack names its own secret)")
    if args.local:
        return _local_target(args, session_factory)
    session = session_factory(region_name=args.region) if args.region else session_factory()
    if args.stack_name:
        return _stack_target(args.stack_name, session)
    endpoint = None
    region, sandbox = getattr(args, "amazon_pay_region", None), getattr(args, "amazon_pay_sandbox", None)
    if (region is None) != (sandbox is None):
        raise UsageError("give both --amazon-pay-region and --amazon-pay-sandbox, or neither")
    if region is not None:
        endpoint = endpoint_for(region, sandbox=sandbox == "true")
    return Target(
        table=args.table,
        session=session,
        secret=args.secret,
        amazon_pay_endpoint=endpoint,
        retry_delay_seconds=getattr(args, "retry_delay_seconds", 90),
        max_processing_failure_retries=getattr(args, "max_processing_failure_retries", 1),
        allow_over_refund=getattr(args, "allow_amazon_over_refund", False),
    )


def _local_target(args: argparse.Namespace, session_factory: SessionFactory) -> Target:
    try:
        state = read_state()
    except LocalStateError as error:
        raise TargetNotFound(str(error)) from None
    session = session_factory(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
        region_name=args.region or state.region,
    )
    return Target(
        table=state.table,
        session=session,
        secret=state.secret,
        endpoint_url=state.aws_endpoint_url,
        amazon_pay_endpoint=_endpoint_of(state.amazon_pay_endpoint),
        retry_delay_seconds=state.retry_delay_seconds,
        max_processing_failure_retries=state.max_processing_failure_retries,
        allow_over_refund=state.allow_over_refund,
    )


def _endpoint_of(url: str) -> Endpoint:
    parts = urlsplit(url)
    return Endpoint(parts.scheme, parts.netloc, parts.path)


def _stack_target(stack_name: str, session: boto3.Session) -> Target:
    cloudformation: Any = session.client("cloudformation")
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        physical = {
            summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "")
            for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
            for summary in page["StackResourceSummaries"]
        }
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":
            raise TargetNotFound(f"stack {stack_name}: {error.response['Error'].get('Message')}") from None
        raise
    if not physical.get(TABLE_RESOURCE):
        raise TargetNotFound(f"stack {stack_name} has no {TABLE_RESOURCE}: is it a stack of this service?")
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    region = parameters.get("AmazonPayRegion", "us") or "us"
    return Target(
        table=physical[TABLE_RESOURCE],
        session=session,
        secret=physical.get(SECRET_RESOURCE) or None,
        amazon_pay_endpoint=endpoint_for(
            region, sandbox=parameters.get("AmazonPaySandbox", "true") != "false"
        ),
        retry_delay_seconds=int(parameters.get("RetryDelaySeconds") or 90),
        max_processing_failure_retries=int(parameters.get("MaxProcessingFailureRetries") or 1),
        allow_over_refund=parameters.get("AllowAmazonOverRefund") == "true",
    )


AWS_ERRORS = (ClientError, BotoCoreError)
