"""Write the storefront API's OpenAPI document (docs/openapi.json), generated from the RefundApi resolver.

Usage: .venv/bin/python scripts/generate_openapi.py [output.json]   (default: docs/openapi.json)

tests/unit/refund_api/test_openapi.py fails when the committed document differs from a fresh one, so the
published document cannot go stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "openapi.json"
TITLE = "amazon-pay-refunds storefront API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Refunds for Amazon Pay (v1 API). The storefront's calls are signed with AWS Signature Version 4 "
    "(service execute-api) by a principal holding the stack's StorefrontPolicy, and carry the stack's API "
    "key in `x-api-key` (with the stack parameter StorefrontAuthorization=API_KEY, the key alone); resolve "
    "is signed by an operator holding the OperatorPolicy, never by the storefront. A path or "
    "method not listed here is answered 403 MISSING_AUTHENTICATION_TOKEN by API Gateway. Bodies are "
    "`application/json` (anything else: 415), parsed strictly (duplicate keys: 400). Amounts are decimal "
    'strings with the currency\'s minor units (JPY has none). Errors are `{"error": {"code", "message", '
    '"details"}}`. A refund is accepted (202) as soon as its intent and its reservation on the capture are '
    "stored; its status then follows Amazon (events on the bus). A refund_id is used up once its refund is "
    "stored: see docs/API.md."
)
API_KEY = "api_key"
SIGV4 = "sigv4"
OPERATOR_ROUTES = {("/refunds/{refund_id}/resolve", "post")}


def render() -> str:
    """The document as committed: stable key order, two-space indent, final newline."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from functions.refund_api.app import app

    schema = app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        servers=[Server(url="https://{api_id}.execute-api.{region}.amazonaws.com/v1")],
        security_schemes={
            API_KEY: APIKey.model_validate({"name": "x-api-key", "in": APIKeyIn.header}),
            SIGV4: APIKey.model_validate(
                {
                    "name": "Authorization",
                    "in": APIKeyIn.header,
                    "description": "AWS Signature Version 4, service execute-api (template.yaml: sigv4)",
                }
            ),
        },
        security=[{SIGV4: [], API_KEY: []}],
    )
    document = _our_error_bodies(json.loads(schema))
    for path, method in OPERATOR_ROUTES:
        document["paths"][path][method]["security"] = [{SIGV4: []}]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _our_error_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools documents its own 422 body on every route; this API answers ErrorBody (http_errors)."""
    ours = {"$ref": "#/components/schemas/ErrorBody"}
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if method == "get":  # its only parameters are plain strings in the path: never a 422
                operation.get("responses", {}).pop("422", None)
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    if media.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                        response["description"] = "ValidationError: the fields named in details"
                        media["schema"] = ours
    schemas = document.get("components", {}).get("schemas", {})
    for powertools_only in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(powertools_only, None)
    return document


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else OUTPUT
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
