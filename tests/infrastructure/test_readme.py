"""The README serves a newcomer's first hour: short, a picture, the local walkthrough before the reference,
every event the storefront can receive, and links to the pages that hold the rest."""

from __future__ import annotations

import re
from pathlib import Path

from amazon_pay_refunds.core.models import DetailType

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
CONTRACT = (REPO / "docs" / "CONTRACT.md").read_text(encoding="utf-8")


def _sections() -> list[str]:
    return re.findall(r"^## (.+)$", README, flags=re.MULTILINE)


def test_the_readme_is_short_and_operations_live_on_their_own_page() -> None:
    assert len(README.splitlines()) <= 250
    assert "## Operations" not in README and "### Runbook" not in README
    for page in ("docs/API.md", "docs/DEPLOY.md", "docs/OPERATIONS.md", "docs/CONTRACT.md"):
        assert f"]({page})" in README, page


def test_the_readme_draws_the_flows_in_a_form_github_renders() -> None:
    [diagram] = re.findall(r"```mermaid\n(.*?)```", README, flags=re.DOTALL)
    for part in ("RefundApi", "IpnHandler", "EventPublisher", "EventBridge", "Step Functions", "Reconciler",
                 "SNS", "/ipn", "DynamoDB", "Storefront"):  # fmt: skip
        assert part in diagram, part


def test_the_local_walkthrough_comes_before_the_reference_and_uses_a_real_capture() -> None:
    sections = _sections()
    local = next(i for i, s in enumerate(sections) if "locally" in s.lower())
    api = next(i for i, s in enumerate(sections) if "API" in s)
    assert local < api
    walkthrough = README.split(f"## {sections[local]}", 1)[1].split("\n## ", 1)[0]
    assert "make local" in walkthrough and "/simulator/captures" in walkthrough
    first_refund = walkthrough.index("$API/refunds")
    assert walkthrough.index("CAPTURE=$(") < first_refund
    assert (
        "S01-1234567" not in walkthrough
    )  # no placeholder capture id where a pasted command needs a real one


def test_every_event_the_storefront_can_receive_is_named_with_deduplication() -> None:
    for detail_type in DetailType:
        assert f"`{detail_type.value}`" in README, detail_type.value
        assert f"`{detail_type.value}`" in CONTRACT, detail_type.value
    assert "event_id" in README and "deduplicate" in README.lower()
