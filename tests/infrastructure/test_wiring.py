"""What neither moto nor the local stack's IAM gate checks, in one place: each function's environment, the
state machine's substitutions. (That the bus rules match the events the code publishes is proven on the
local stack: tests/integration/retry, where moto matches the template's pattern against published events.)

The environment: the local stack runs every function in one process, so one function's variable serves
all of them there. Here each function's container is built (its module imported cold, then every cached
builder of it called, as its first invocation would) in an environment holding only what the template
sets for that function plus what Lambda provides; every variable the code read must be one of them.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_refunds import runtime
from amazon_pay_refunds.config import LOCAL_ONLY_VARIABLES, ConfigurationError
from refunds_local.lambdas import resolve_handler
from refunds_local.template import function_specs, load_template, parameter_default
from tests.support.template import template_functions as _functions

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
# What the Lambda runtime sets in every function's environment (and Powertools' own optional knobs).
PROVIDED_PREFIXES = ("AWS_", "_X_AMZN_", "_HANDLER", "LAMBDA_", "POWERTOOLS_DEV", "POWERTOOLS_TRACE_DISABLED")
LAMBDA_PROVIDED = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
RESOURCE_VALUES = {
    "RefundsTable": "stack-RefundsTable-ABC",
    "RefundsBus": "stack-refunds",
    "CredentialsSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:credentials-AbCdEf",
    "RetryWorkflow": "arn:aws:states:us-east-1:123456789012:stateMachine:RetryWorkflow-ABC",
    "SellerIds": "A1EXAMPLE",
}


OUR_CODE = (str(REPO / "layers"), str(REPO / "functions"))
STANDARD_LIBRARY = (os.path.dirname(os.__file__),)


class RecordingEnviron(dict[str, str]):
    """An os.environ stand-in that remembers every name our code (the layer, the functions) reads."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def _note(self, name: object) -> None:
        frame = inspect.currentframe()
        frame = frame.f_back.f_back if frame is not None and frame.f_back is not None else None
        while frame is not None and frame.f_code.co_filename.startswith(STANDARD_LIBRARY):
            frame = frame.f_back  # os.getenv and the like: who called them
        if frame is not None and frame.f_code.co_filename.startswith(OUR_CODE):
            self.read.add(str(name))

    def __getitem__(self, name: str) -> str:
        self._note(name)
        return super().__getitem__(name)

    def get(self, name: str, default: Any = None) -> Any:
        self._note(name)
        return super().get(name, default)

    def __contains__(self, name: object) -> bool:
        self._note(name)
        return super().__contains__(name)


def _value(template: dict[str, Any], value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = str(value["Ref"])
        return RESOURCE_VALUES.get(name) or parameter_default(template, name) or ""
    return str(value)


def _environment(template: dict[str, Any], function: str) -> dict[str, str]:
    variables = _functions(template)[function]["Environment"]["Variables"]
    return {**LAMBDA_PROVIDED, "AWS_LAMBDA_FUNCTION_NAME": function} | {
        name: _value(template, value) for name, value in variables.items()
    }


def variables_read(
    template: dict[str, Any], function: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[set[str], set[str]]:
    """What `function`'s container read (our code's reads only) and what the template set for it."""
    spec = function_specs(template)[function]
    environment = RecordingEnviron(_environment(template, function))
    with monkeypatch.context() as patch:
        patch.setattr(os, "environ", environment)
        runtime.reset()
        try:
            handler = resolve_handler(f"{spec.module}.{spec.handler}")  # imported cold, in this environment
            builders = [
                value
                for value in inspect.unwrap(handler).__globals__.values()
                if isinstance(value, functools._lru_cache_wrapper)
                and getattr(value, "__module__", "") == spec.module
            ]
            runtime.settings()
            for build in builders:
                build()
        except (KeyError, ValueError, ConfigurationError):
            pass  # a missing or invalid variable: what was read tells which
        finally:
            runtime.reset()
    read = {name for name in environment.read if not name.startswith(PROVIDED_PREFIXES)}
    return read - set(LOCAL_ONLY_VARIABLES), set(environment)


@pytest.mark.parametrize("function", sorted(function_specs(load_template(TEMPLATE_PATH))))
def test_every_variable_a_function_reads_is_set_for_it_by_the_template(
    function: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read, provided = variables_read(load_template(TEMPLATE_PATH), function, monkeypatch)
    assert "REFUNDS_TABLE" in read, "the recording saw no read of the settings: the check would be vacuous"
    assert read <= provided, (
        f"{function} reads variables its template does not set: {sorted(read - provided)}"
    )


def test_a_variable_set_on_another_function_is_found_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: RETRY_WORKFLOW_ARN moved from the starter to the steps function."""
    template = load_template(TEMPLATE_PATH)
    resources = template["Resources"]
    variable = resources["RetryStarterFunction"]["Properties"]["Environment"]["Variables"].pop(
        "RETRY_WORKFLOW_ARN"
    )
    resources["RetryStepsFunction"]["Properties"]["Environment"] = {
        "Variables": {"RETRY_WORKFLOW_ARN": variable}
    }
    read, provided = variables_read(template, "RetryStarterFunction", monkeypatch)
    assert read - provided == {"RETRY_WORKFLOW_ARN"}


def test_every_placeholder_of_the_state_machine_is_substituted_and_every_substitution_used() -> None:
    template = load_template(TEMPLATE_PATH)
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::StateMachine":
            continue
        properties = resource["Properties"]
        text = (REPO / properties["DefinitionUri"]).read_text(encoding="utf-8")
        placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
        assert placeholders == set(properties.get("DefinitionSubstitutions") or {}), name
