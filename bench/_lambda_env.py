"""The environment a deployed function sees (template.yaml's Globals and the function's own variables),
with dummy values for every reference, and Lambda's own variables. No value here reaches AWS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"

# Dummy values for what the template references (resources, parameters without a default).
DUMMY_REFERENCES = {
    "RefundsTable": "bench-refunds",
    "RefundsBus": "bench-refunds-bus",
    "CredentialsSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:amazon-pay-refunds/creds",
    "SellerIds": "A1LOCALSELLER",
}
# What Lambda itself sets (python3.13, arm64, 512 MB, X-Ray active), or what keeps boto3 off the network.
LAMBDA_VARIABLES = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "TZ": ":UTC",
}


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) as {"Ref": ...} / {"Fn::X": ...}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _tag)


def load_template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_Loader)  # noqa: S506 (safe subclass)
    return loaded


@dataclass(frozen=True)
class FunctionInfo:
    logical_id: str
    code_dir: Path
    module: str  # the handler's module inside code_dir ("app")
    handler: str
    memory_mb: int
    timeout_seconds: float
    variables: dict[str, str]


def _resolve(value: Any, parameters: dict[str, Any]) -> str:
    if isinstance(value, dict) and "Ref" in value:
        name = str(value["Ref"])
        if name in DUMMY_REFERENCES:
            return DUMMY_REFERENCES[name]
        default = (parameters.get(name) or {}).get("Default")
        return "" if default is None else str(default)
    if isinstance(value, dict):
        return f"bench-{next(iter(value))}"
    return str(value)


def functions() -> list[FunctionInfo]:
    """Every AWS::Serverless::Function of the template whose code is under functions/."""
    template = load_template()
    parameters = template.get("Parameters") or {}
    defaults = (template.get("Globals") or {}).get("Function") or {}
    global_variables = (defaults.get("Environment") or {}).get("Variables") or {}
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri")
        if not isinstance(code_uri, str):
            continue
        handler = str(properties.get("Handler", defaults.get("Handler", "app.lambda_handler")))
        module, _, name = handler.rpartition(".")
        own = (properties.get("Environment") or {}).get("Variables") or {}
        variables = {k: _resolve(v, parameters) for k, v in {**global_variables, **own}.items()}
        variables.update(LAMBDA_VARIABLES)
        variables["AWS_LAMBDA_FUNCTION_NAME"] = f"bench-{logical_id}"
        variables["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(
            properties.get("MemorySize", defaults.get("MemorySize", 128))
        )
        variables["_HANDLER"] = handler
        variables["LAMBDA_TASK_ROOT"] = str(REPO / code_uri)
        found.append(
            FunctionInfo(
                logical_id=logical_id,
                code_dir=REPO / code_uri,
                module=module,
                handler=name,
                memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
                timeout_seconds=float(properties.get("Timeout", defaults.get("Timeout", 3))),
                variables=variables,
            )
        )
    return found


def untemplated_function_dirs() -> list[Path]:
    """functions/*/app.py folders that no template function points at (yet)."""
    known = {info.code_dir.resolve() for info in functions()}
    return sorted(
        path.parent for path in (REPO / "functions").glob("*/app.py") if path.parent.resolve() not in known
    )
