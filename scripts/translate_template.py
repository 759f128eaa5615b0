"""Translate the SAM template to plain CloudFormation JSON, offline, so cfn-lint can check what AWS deploys.

Usage: .venv/bin/python scripts/translate_template.py [template.yaml] [output.json]

`sam validate` without --lint needs AWS credentials (it lists IAM managed policies), and cfn-lint only
checks the SAM resources themselves, not the roles, stages, permissions and usage plan SAM generates.
The translation itself (refunds_local/translation.py) makes no AWS call; the local stack uses the same one
to create the roles SAM generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from samtranslator.model.exceptions import InvalidDocumentException

from refunds_local.translation import translate


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
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(translated, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{source} -> {target} ({len(translated.get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
