"""Where the repository and its real protocol fixtures are (tests/fixtures/README.md names each source)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
