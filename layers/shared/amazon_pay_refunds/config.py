"""Deployment configuration from the environment (CONTRACT §8), and the guard on local-only settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .adapters.mws.endpoints import Endpoint, endpoint_for
from .adapters.pay_v2.endpoints import PayV2Endpoint
from .adapters.pay_v2.endpoints import endpoint_for as v2_endpoint_for

REGIONS = ("us", "eu", "uk", "de", "jp")
# Settings that exist only for the embedded local stack and tests. A deployed stack cannot set them: the
# template does not expose them, and load_settings refuses them inside AWS Lambda.
LOCAL_ONLY_VARIABLES = (
    "REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT",
    "REFUNDS_LOCAL_AMAZON_PAY_V2_ENDPOINT",
    "REFUNDS_LOCAL_SNS_CA_PEM",
    "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX",
)


class ConfigurationError(Exception):
    """The environment does not describe a usable deployment."""


class CredentialsNotConfigured(ConfigurationError):
    """The credentials secret has no value yet (as the stack creates it), or not the documented JSON."""


def running_in_lambda(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME") or env.get("AWS_EXECUTION_ENV"))


def refuse_local_settings_in_lambda(environ: Mapping[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    if running_in_lambda(env):
        present = [name for name in LOCAL_ONLY_VARIABLES if env.get(name)]
        if present:
            raise ConfigurationError(f"local-only settings are refused in AWS Lambda: {', '.join(present)}")


def _csv(value: str | None) -> frozenset[str]:
    return frozenset(part.strip() for part in (value or "").split(",") if part.strip())


def _topic_arns(value: str | None) -> frozenset[str]:
    # Imported here: the sns package imports this module for ConfigurationError.
    from .adapters.sns.ipn import is_topic_arn

    arns = _csv(value)
    if not all(is_topic_arn(arn) for arn in arns):
        raise ConfigurationError(
            "IPN_TOPIC_ARNS must list SNS topic ARNs of the aws partition (arn:aws:sns:…)"
        )
    return arns


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ConfigurationError(f"{name} must be 'true' or 'false', not {raw!r}")
    return raw == "true"


@dataclass(frozen=True)
class Settings:
    refunds_table: str
    event_bus_name: str
    amazon_pay_region: str
    amazon_pay_sandbox: bool
    credentials_secret: str
    seller_ids: frozenset[str]
    ipn_topic_arns: frozenset[str]
    retry_delay_seconds: int
    max_processing_failure_retries: int
    allow_over_refund: bool
    local_amazon_pay_endpoint: Endpoint | None = None
    local_pay_v2_endpoint: PayV2Endpoint | None = None

    @property
    def pay_v2_endpoint(self) -> PayV2Endpoint:
        """Amazon Pay API v2: the simulator locally; Amazon's endpoint for the region otherwise."""
        if self.local_pay_v2_endpoint is not None:
            return self.local_pay_v2_endpoint
        return v2_endpoint_for(self.amazon_pay_region, sandbox=self.amazon_pay_sandbox)

    @property
    def amazon_pay_endpoint(self) -> Endpoint:
        """The simulator locally; Amazon's live or sandbox endpoint for the region otherwise."""
        if self.local_amazon_pay_endpoint is not None:
            return self.local_amazon_pay_endpoint
        return endpoint_for(self.amazon_pay_region, sandbox=self.amazon_pay_sandbox)


def _local_endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError("REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT must be an http(s) URL with a path")
    return Endpoint(parts.scheme, parts.netloc, parts.path or "/OffAmazonPayments_Sandbox/2013-01-01")


def _local_v2_endpoint(url: str, region: str, sandbox: bool) -> PayV2Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/") or parts.query:
        raise ConfigurationError("REFUNDS_LOCAL_AMAZON_PAY_V2_ENDPOINT must be an http(s) URL of a host")
    return PayV2Endpoint(parts.scheme, parts.netloc, region, sandbox)


RETRY_WORKFLOW_ARN_VARIABLE = "RETRY_WORKFLOW_ARN"


def retry_workflow_arn(environ: Mapping[str, str] | None = None) -> str:
    """The RetryWorkflow state machine's ARN: only the RetryStarter function is given it (template.yaml),
    so it is read when the starter is built, not with the settings every function loads."""
    env = os.environ if environ is None else environ
    arn = env.get(RETRY_WORKFLOW_ARN_VARIABLE, "").strip()
    if not arn.startswith("arn:"):
        raise ConfigurationError(f"{RETRY_WORKFLOW_ARN_VARIABLE} must be the RetryWorkflow's ARN")
    return arn


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    refuse_local_settings_in_lambda(env)
    in_lambda = running_in_lambda(env)
    missing = [n for n in ("REFUNDS_TABLE", "AMAZON_PAY_CREDENTIALS_SECRET") if not env.get(n, "").strip()]
    if missing:
        raise ConfigurationError(f"missing configuration: {', '.join(missing)}")
    region = env.get("AMAZON_PAY_REGION", "us").strip().lower()
    if region not in REGIONS:
        raise ConfigurationError(f"AMAZON_PAY_REGION must be one of {', '.join(REGIONS)}, not {region!r}")
    local_endpoint = env.get("REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT", "").strip()
    local_v2_endpoint = env.get("REFUNDS_LOCAL_AMAZON_PAY_V2_ENDPOINT", "").strip()
    sandbox = _bool(env, "AMAZON_PAY_SANDBOX", True)
    return Settings(
        refunds_table=env["REFUNDS_TABLE"].strip(),
        event_bus_name=env.get("EVENT_BUS_NAME", "").strip() or "default",
        amazon_pay_region=region,
        amazon_pay_sandbox=sandbox,
        credentials_secret=env["AMAZON_PAY_CREDENTIALS_SECRET"].strip(),
        seller_ids=_csv(env.get("SELLER_IDS")),
        ipn_topic_arns=_topic_arns(env.get("IPN_TOPIC_ARNS")),
        # Amazon asks for one to two minutes; only the local stack may wait less.
        retry_delay_seconds=_int(env, "RETRY_DELAY_SECONDS", 90, 60 if in_lambda else 0, 120),
        max_processing_failure_retries=_int(env, "MAX_PROCESSING_FAILURE_RETRIES", 1, 0, 5),
        allow_over_refund=_bool(env, "ALLOW_AMAZON_OVER_REFUND", False),
        local_amazon_pay_endpoint=_local_endpoint(local_endpoint) if local_endpoint else None,
        local_pay_v2_endpoint=(
            _local_v2_endpoint(local_v2_endpoint, region, sandbox) if local_v2_endpoint else None
        ),
    )
