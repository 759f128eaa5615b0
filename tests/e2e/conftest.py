"""End to end over real HTTP: one EmbeddedStack per test module (the real handlers, moto, the simulator).

The stream is pumped into the EventPublisher when a test reads `stack.events()`. The simulator's request
quotas are off, and refunds do not settle on their own: a test settles them when it wants Amazon's
Completed (or Declined) IPN.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from refunds_local.clients import SimulatorControl, Storefront, operator_of, storefront_of
from refunds_local.stack import EmbeddedStack
from refunds_local.template import TEMPLATE_PATH

_NUMBERS = itertools.count(1)
# Another template for the whole run (tests/e2e/test_iam.py proves a missing permission fails a test).
TEMPLATE = os.environ.get("REFUNDS_E2E_TEMPLATE", str(TEMPLATE_PATH))


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(
        port=0, sim_port=0, throttling=False, settle_seconds=3600, pump=False, template_path=TEMPLATE
    ) as running:
        yield running


@pytest.fixture(name="storefront")
def storefront_fixture(stack: EmbeddedStack) -> Storefront:
    """The storefront backend: the API key and its IAM user's SigV4 signature (StorefrontPolicy)."""
    return storefront_of(stack)


@pytest.fixture(name="operator")
def operator_fixture(stack: EmbeddedStack) -> Storefront:
    """An operator: its IAM user's SigV4 signature (OperatorPolicy)."""
    return operator_of(stack)


@pytest.fixture
def simulator(stack: EmbeddedStack) -> SimulatorControl:
    return SimulatorControl(stack.sim_url)


@pytest.fixture
def capture(simulator: SimulatorControl) -> Callable[..., str]:
    """A new capture at Amazon (the simulator): `capture("100.00", "USD", state="Completed")`."""

    def make(amount: str = "100.00", currency_code: str = "USD", state: str = "Completed") -> str:
        return simulator.create_capture(amount, currency_code, state=state)

    return make


def new_refund_id(prefix: str = "ord") -> str:
    return f"{prefix}-{next(_NUMBERS):04d}-r1"


def refund_body(
    capture_id: str, amount: str = "12.50", currency_code: str = "USD", **extra: Any
) -> dict[str, Any]:
    body: dict[str, object] = {
        "refund_id": new_refund_id(),
        "amazon_capture_id": capture_id,
        "amount": amount,
        "currency_code": currency_code,
        "seller_refund_note": "Returned item",
        "soft_descriptor": "Returns",
        "metadata": {"order_id": "1001"},
    }
    body.update(extra)
    return body
