"""`Settings` for services built through the composition root in tests (no environment read)."""

from __future__ import annotations

from typing import Any

from amazon_pay_refunds.config import Settings


def make_settings(**overrides: Any) -> Settings:
    """A deployment's settings with the template's defaults; `overrides` by field name."""
    values: dict[str, Any] = {
        "refunds_table": "refunds",
        "event_bus_name": "refunds",
        "amazon_pay_region": "us",
        "amazon_pay_sandbox": True,
        "credentials_secret": "credentials",
        "seller_ids": frozenset({"A1EXAMPLE"}),
        "ipn_topic_arns": frozenset(),
        "retry_delay_seconds": 90,
        "max_processing_failure_retries": 1,
        "allow_over_refund": False,
    }
    return Settings(**(values | overrides))
