"""Translate the SAM template to plain CloudFormation JSON, offline, so cfn-lint can check what AWS deploys.

Usage: .venv/bin/python scripts/translate_template.py [template.yaml] [output.json]

`sam validate` without --lint needs AWS credentials (it lists IAM managed policies), and cfn-lint only
checks the SAM resources themselves, not the roles, stages, permissions and usage plan SAM generates.
The translation itself (refunds_local/translation.py) makes no AWS call; the local stack uses the same one
to create the roles SAM generates.

checkov reads the translated template too (make template-checks). A check skipped on a SAM resource
(Metadata checkov.skip, with its reason, in template.yaml) also applies to the resources SAM generates from
it, named after it (an Api's stage, a function's rule dead-letter queue): they have no Metadata of their own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from samtranslator.model.exceptions import InvalidDocumentException

from refunds_local.template import load_template
from refunds_local.translation import translate


def carry_checkov_skips(source: dict[str, Any], translated: dict[str, Any]) -> None:
    """Copy each SAM resource's checkov skips to the generated resources named after it."""
    generated = {name: r for name, r in translated["Resources"].items() if name not in source["Resources"]}
    for name, resource in source["Resources"].items():
        if not str(resource.get("Type", "")).startswith("AWS::Serverless::"):
            continue
        skips = ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip")
        if not skips:
            continue
        for generated_name, generated_resource in generated.items():
            if generated_name.startswith(name):
                metadata = generated_resource.setdefault("Metadata", {})
                metadata.setdefault("checkov", {}).setdefault("skip", []).extend(skips)


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else Path("template.yaml")
    target = Path(argv[2]) if len(argv) > 2 else Path(".aws-sam/template-checks/template.json")
    try:
        translated = translate(source)
    except InvalidDocumentException as error:
        print(f"{source}: {error.message}", file=sys.stderr)
        for cause in error.causes:
            print(f"  - {cause.message}", file=sys.stderr)
        return 1
    carry_checkov_skips(load_template(source), translated)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(translated, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{source} -> {target} ({len(translated.get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
