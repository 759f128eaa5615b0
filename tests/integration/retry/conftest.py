"""One local stack for the module: a short retry delay, refunds settling after a second."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from refunds_local.stack import EmbeddedStack

SETTLE_SECONDS = 1.0


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(
        port=0, sim_port=0, throttling=False, settle_seconds=SETTLE_SECONDS, retry_delay_seconds=1
    ) as running:
        yield running
