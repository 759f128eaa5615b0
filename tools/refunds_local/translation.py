"""The SAM transform of template.yaml, offline: the CloudFormation (roles, permissions, rules) SAM deploys.

Used by `scripts/translate_template.py` (cfn-lint on the translated template) and by the local stack, which
creates the execution roles SAM generates (iam.py). No AWS call: local CodeUri/ContentUri folders become
placeholder S3 locations (as `sam validate` does), local state machine definitions are inlined, and
managed policy names resolve through the map bundled with samtranslator.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

import boto3
import yaml  # type: ignore[import-untyped]
from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]
from samtranslator.utils.py27hash_fix import (  # type: ignore[import-untyped]
    to_py27_compatible_template,
    undo_mark_unicode_str_in_template,
)
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

REGION = "us-east-1"
PLACEHOLDER_BUCKET = "template-checks-placeholder"

# Local path properties per SAM resource type, replaced by a placeholder S3 location.
LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
}

_CACHE: dict[str, dict[str, Any]] = {}
_CACHE_LOCK = threading.Lock()


class OfflineManagedPolicyLoader:
    """Managed policy names SAM's bundled map does not know stay unresolved (cfn-lint then flags them)."""

    def load(self) -> dict[str, str]:
        return {}


def _is_local_path(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://")


def _replace_local_artifacts(template: dict[str, Any], base: Path) -> None:
    function_globals = template.get("Globals", {}).get("Function", {})
    if _is_local_path(function_globals.get("CodeUri")):
        function_globals["CodeUri"] = f"s3://{PLACEHOLDER_BUCKET}/Globals.zip"
    for logical_id, resource in template.get("Resources", {}).items():
        if not isinstance(resource, dict):
            continue
        properties = resource.get("Properties", {})
        resource_type = resource.get("Type")
        definition_uri = properties.get("DefinitionUri")
        if resource_type == "AWS::Serverless::StateMachine" and _is_local_path(definition_uri):
            # Inlined rather than uploaded, so cfn-lint also sees the definition (substitutions still apply).
            properties.pop("DefinitionUri")
            definition_path = base / str(definition_uri)
            properties["Definition"] = yaml.safe_load(definition_path.read_text(encoding="utf-8"))
            continue
        key = LOCAL_URI_PROPERTIES.get(str(resource_type))
        if key and _is_local_path(properties.get(key)):
            properties[key] = f"s3://{PLACEHOLDER_BUCKET}/{logical_id}.zip"


def translate(template_path: Path, base: Path | None = None) -> dict[str, Any]:
    """The CloudFormation template that the SAM transform makes of `template_path` (artifacts aside).

    `base`: the folder local DefinitionUri paths are relative to (default: the template's). Raises
    samtranslator's InvalidDocumentException when SAM refuses the template.
    """
    text = template_path.read_text(encoding="utf-8")
    base = base if base is not None else template_path.parent
    key = hashlib.sha256(f"{base.resolve()}\0{text}".encode()).hexdigest()
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return copy.deepcopy(cached)
    template: dict[str, Any] = yaml_parse(text)
    _replace_local_artifacts(template, base)
    parameter_values: dict[str, Any] = {}
    # As samtranslator's own transform(): keeps generated logical ids identical to CloudFormation's.
    to_py27_compatible_template(template, parameter_values)
    # The session only supplies the region (AWS::Region, AWS::Partition); it makes no call.
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    # samtranslator warns about feature toggles it has no configuration for; irrelevant offline.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    translated = translator.translate(
        template,
        parameter_values=parameter_values,
        get_managed_policy_map=OfflineManagedPolicyLoader().load,
    )
    result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    with _CACHE_LOCK:
        _CACHE[key] = copy.deepcopy(result)
    return result
