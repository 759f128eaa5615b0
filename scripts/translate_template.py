"""Translate the SAM template to plain CloudFormation JSON, offline, so cfn-lint can check what AWS deploys.

Usage: .venv-sam/bin/python scripts/translate_template.py [template.yaml] [output.json]

`sam validate` without --lint needs AWS credentials (it lists IAM managed policies), and cfn-lint only
checks the SAM resources themselves, not the roles, stages, permissions and usage plan SAM generates.
This script runs the same translator with no AWS call at all: local CodeUri/ContentUri folders become
placeholder S3 locations (as `sam validate` does), local state machine definitions are inlined, and
managed policy names resolve through the map bundled with samtranslator.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
from samtranslator.yaml_helper import yaml_parse

REGION = "us-east-1"
PLACEHOLDER_BUCKET = "template-checks-placeholder"

# Local path properties per SAM resource type, replaced by a placeholder S3 location.
LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
}


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


def translate(template_path: Path) -> dict[str, Any]:
    """The CloudFormation template that the SAM transform makes of `template_path` (artifacts aside).

    Raises samtranslator's InvalidDocumentException when SAM refuses the template.
    """
    template: dict[str, Any] = yaml_parse(template_path.read_text(encoding="utf-8"))
    _replace_local_artifacts(template, template_path.parent)
    parameter_values: dict[str, Any] = {}
    # As samtranslator's own transform(): keeps generated logical ids identical to CloudFormation's.
    to_py27_compatible_template(template, parameter_values)
    # The session only supplies the region (AWS::Region, AWS::Partition); it makes no call.
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated = translator.translate(
        template,
        parameter_values=parameter_values,
        get_managed_policy_map=OfflineManagedPolicyLoader().load,
    )
    result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    return result


def main(argv: list[str]) -> int:
    # samtranslator warns about feature toggles it has no configuration for; irrelevant offline.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    source = Path(argv[1]) if len(argv) > 1 else Path("template.yaml")
    target = Path(argv[2]) if len(argv) > 2 else Path(".aws-sam/template-checks/template.json")
    try:
        translated = translate(source)
    except InvalidDocumentException as error:
        print(f"{source}: {error.message}", file=sys.stderr)
        for cause in error.causes:
            print(f"  - {cause.message}", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(translated, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{source} -> {target} ({len(translated.get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
