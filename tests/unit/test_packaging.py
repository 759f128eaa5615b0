"""The Lambda layer installs exactly what the project declares (what the tests ran with)."""

from __future__ import annotations

import tomllib

from tests.support.paths import REPO


def _requirement_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}


def test_layer_requirements_equal_the_project_runtime_dependencies() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = _requirement_lines((REPO / "layers" / "shared" / "requirements.txt").read_text())
    assert layer == set(declared)


def test_layer_does_not_carry_development_tools() -> None:
    layer = " ".join(_requirement_lines((REPO / "layers" / "shared" / "requirements.txt").read_text()))
    for tool in ("moto", "pytest", "cfn-lint", "amazon-pay", "hypothesis"):
        assert tool not in layer
