"""Imported once by the forkserver that forks the local stack's execution environments (environments.py).

What every environment would otherwise load at its cold start, loaded once and shared by the forks: boto3
and botocore with the service models the handlers call (in a botocore loader each environment's session
reuses), Powertools, requests, cryptography and the shared layer's modules. Nothing here reads the
environment or builds a client: each environment does that in its own variables (its role's credentials).
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from functools import cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session

# The services the handlers call (the template's policies name them); a missing one loads on demand.
SERVICES = ("dynamodb", "events", "secretsmanager", "stepfunctions")
_LIBRARIES = (
    "aws_lambda_powertools",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.typing",
    "aws_lambda_powertools.event_handler.openapi.params",
    "aws_lambda_powertools.tracing",
    "aws_xray_sdk.core",  # Powertools' Tracer imports it even with tracing disabled
    "requests",
    "cryptography.x509",
    "amazon_pay_refunds",
)


@cache
def loader() -> botocore.loaders.Loader:
    """A botocore loader with the services' models and the endpoint rules already read."""
    loaded = botocore.loaders.create_loader()
    session = botocore.session.get_session()
    session.register_component("data_loader", loaded)
    for service in SERVICES:
        with contextlib.suppress(Exception):  # an unknown service just loads later
            session.get_service_model(service)
            session.get_component("endpoint_resolver")
            loaded.load_service_model(service, "endpoint-rule-set-1")
    return loaded


def default_session() -> Any:
    """boto3's default session for this environment: its own variables, the preloaded models."""
    core = botocore.session.get_session()
    core.register_component("data_loader", loader())
    boto3.setup_default_session(botocore_session=core)
    return boto3.DEFAULT_SESSION


def _preload() -> None:
    for name in _LIBRARIES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    with contextlib.suppress(ImportError):
        package = importlib.import_module("amazon_pay_refunds")
        for module in pkgutil.walk_packages(package.__path__, "amazon_pay_refunds."):
            with contextlib.suppress(Exception):  # a module that needs more than an import is left lazy
                importlib.import_module(module.name)
    loader()


_preload()
