"""The published OpenAPI document is the one generated from the code, and says what clients need."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_openapi", REPO / "scripts" / "generate_openapi.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def document(generator: ModuleType) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(generator.render())
    return result


def test_committed_document_equals_a_freshly_generated_one(generator: ModuleType) -> None:
    committed = (REPO / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == generator.render(), "run: .venv/bin/python scripts/generate_openapi.py"


def test_storefront_operations_require_sigv4_and_the_api_key_and_resolve_sigv4_only(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["api_key"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert (schemes["sigv4"]["in"], schemes["sigv4"]["name"]) == ("header", "Authorization")
    assert document["security"] == [{"sigv4": [], "api_key": []}]
    overridden = {
        (path, method): operation["security"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "security" in operation
    }
    assert overridden == {("/refunds/{refund_id}/resolve", "post"): [{"sigv4": []}]}


def test_refund_request_answers_are_documented_with_their_models(document: dict[str, Any]) -> None:
    responses = document["paths"]["/refunds"]["post"]["responses"]
    assert set(responses) == {
        "200",
        "202",
        "400",
        "403",
        "409",
        "413",
        "415",
        "422",
        "429",
        "500",
        "502",
        "503",
        "504",
    }
    assert responses["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/RefundResource")


def test_no_answer_is_documented_with_powertools_default_error_body(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_every_route_documents_the_answers_api_gateway_and_the_5xx_can_give(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"403", "429", "500", "502", "503", "504"} <= statuses, (method, path)
            if method == "post":
                assert {"400", "413", "415", "422"} <= statuses, (method, path)


def test_the_api_page_lists_every_status_of_every_operation(document: dict[str, Any]) -> None:
    """docs/API.md is written by hand, so it is checked against the generated document."""
    page = (REPO / "docs" / "API.md").read_text(encoding="utf-8")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            heading = f"### `{method.upper()} {path}`"
            assert heading in page, heading
            text = page.split(heading, 1)[1].split("\n### ", 1)[0]
            for status in operation["responses"]:
                assert f"| {status} " in text, f"{heading} does not list {status}"
