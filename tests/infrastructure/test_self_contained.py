"""The repository stands on its own: a clone with nothing beside it has every fixture, doc and link."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support.paths import FIXTURES

REPO = Path(__file__).resolve().parents[2]
# Folders that are not the project's own files: virtualenvs, caches, build output, version control.
NOT_OURS = {
    ".git",
    ".venv",
    ".venv-sam",
    ".venv-bench-sdk",
    ".aws-sam",
    ".bench-cache",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "__pycache__",
    "build",
    "dist",
}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".txt", ".cfg", ".ini", ""}
# Written in pieces so that this file does not name what it forbids.
OUTSIDE_REFERENCES = (
    "../" + "shared",
    "shared/" + "fixtures",
    "/work/" + "shared",
    "REFUNDS_" + "FIXTURES",
    "SPEC" + ".md",
    "SPEC " + "section",
    "SPEC " + "§",
)
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def project_files() -> list[Path]:
    found: list[Path] = []
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [name for name in subfolders if name not in NOT_OURS and ".egg-info" not in name]
        if Path(folder) == FIXTURES or FIXTURES in Path(folder).parents:
            continue
        found.extend(Path(folder) / name for name in files if Path(name).suffix in TEXT_SUFFIXES)
    return found


def test_the_project_files_are_found() -> None:
    names = {path.relative_to(REPO).as_posix() for path in project_files()}
    assert {"README.md", "template.yaml", "tests/conftest.py", "docs/CONTRACT.md"} <= names


@pytest.mark.parametrize("reference", OUTSIDE_REFERENCES)
def test_no_file_points_outside_the_repository(reference: str) -> None:
    offenders = [
        path.relative_to(REPO).as_posix()
        for path in project_files()
        if reference in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == [], f"{reference!r} named in {offenders}"


def test_every_protocol_fixture_is_in_the_repository_with_its_source() -> None:
    readmes = {
        FIXTURES / "README.md",
        FIXTURES / "v2" / "README.md",
        FIXTURES / "intermediates" / "README.md",
    }
    assert all(readme.is_file() for readme in readmes)
    documented = "\n".join(readme.read_text(encoding="utf-8") for readme in readmes)
    fixtures = [path for path in FIXTURES.rglob("*") if path.is_file() and path not in readmes]
    assert {path.parent.name for path in fixtures} == {"sns", "mws", "v2", "intermediates"}
    undocumented = [path.relative_to(FIXTURES).as_posix() for path in fixtures if path.name not in documented]
    assert undocumented == [], f"fixtures without a source in their README: {undocumented}"


@pytest.mark.parametrize(
    "document", ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
)
def test_every_relative_link_in_the_docs_resolves(document: str) -> None:
    source = REPO / document
    broken = [
        target
        for target in MARKDOWN_LINK.findall(source.read_text(encoding="utf-8"))
        if "://" not in target and not (source.parent / target).exists()
    ]
    assert broken == [], f"{document} links to missing files: {broken}"
