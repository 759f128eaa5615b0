"""template.yaml as the infrastructure tests read it: loaded, translated by SAM, functions with Globals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from refunds_local.translation import translate

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    return loaded


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """The CloudFormation SAM generates (roles, OpenAPI body, stage): the translation
    scripts/translate_template.py and the local stack's roles use."""
    return translate(TEMPLATE_PATH)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == resource_type}


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rule: maps merge key by key, lists concatenate, anything else the resource wins."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


def template_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each SAM function's properties with Globals applied."""
    function_globals = template.get("Globals", {}).get("Function", {})
    return {
        name: merge_globals(function_globals, res.get("Properties", {}))
        for name, res in resources_of_type(template, "AWS::Serverless::Function").items()
    }
