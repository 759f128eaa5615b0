"""The template fixtures every infrastructure test reads (tests/support/template.py)."""

from __future__ import annotations

from tests.support.template import template, translated  # noqa: F401 - fixtures
