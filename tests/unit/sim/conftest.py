from __future__ import annotations

import pytest

from amazon_pay_sim import Simulator
from tests.support.sim import SETTLE_SECONDS, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    """Throttling off: only the throttling tests switch it on."""
    return Simulator(clock=clock, settle_seconds=SETTLE_SECONDS, throttling=False)
