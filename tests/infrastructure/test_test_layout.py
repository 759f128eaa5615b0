"""The tests' own layout: unit tests import no moto and no HTTP server, and a test module imports shared
helpers from tests/support only, never from another test folder."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

TESTS = REPO / "tests"
NOT_IN_UNIT_TESTS = ("moto", "http.server", "socketserver", "amazon_pay_sim.server", "refunds_local.stack")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _offending(names: set[str], forbidden: tuple[str, ...]) -> set[str]:
    return {name for name in names if any(name == f or name.startswith(f + ".") for f in forbidden)}


@pytest.mark.parametrize(
    "path", sorted((TESTS / "unit").rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS))
)
def test_a_unit_test_imports_no_moto_and_no_server(path: Path) -> None:
    assert not _offending(_imports(path), NOT_IN_UNIT_TESTS), "move it to tests/integration"


def _folder_of(module: str) -> str | None:
    """`tests.unit.sns.x` → `tests/unit/sns`; None for tests.support and non-test modules."""
    parts = module.split(".")
    if parts[0] != "tests" or len(parts) < 3 or parts[1] == "support":
        return None
    return "/".join(parts[:3]) if parts[1] in ("unit", "integration") else "/".join(parts[:2])


@pytest.mark.parametrize("path", sorted(TESTS.rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS)))
def test_helpers_are_shared_through_tests_support_only(path: Path) -> None:
    own = "/".join(path.relative_to(REPO).parts[: 3 if path.parts[-3] in ("unit", "integration") else 2])
    foreign = {
        m for m in _imports(path) if (folder := _folder_of(m)) is not None and not own.startswith(folder)
    }
    assert not foreign, f"import these from tests/support instead: {sorted(foreign)}"


def test_the_checks_can_fail() -> None:
    assert _offending({"moto.core", "json"}, NOT_IN_UNIT_TESTS) == {"moto.core"}
    assert _folder_of("tests.unit.sns.forge") == "tests/unit/sns"
    assert _folder_of("tests.support.sns_forge") is None
