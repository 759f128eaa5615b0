from __future__ import annotations

from collections.abc import Iterator

import pytest

from amazon_pay_sim import Simulator
from amazon_pay_sim.authority import LocalAuthority
from amazon_pay_sim.ipn import RetryPolicy
from amazon_pay_sim.receiver import IpnReceiver
from tests.support.sim_client import SimClient


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(settle_seconds=3600, throttling=False, fault_hold_seconds=5)


@pytest.fixture
def served(simulator: Simulator) -> Iterator[SimClient]:
    handle = simulator.serve(host="127.0.0.1", port=0)
    try:
        yield SimClient(handle)
    finally:
        handle.shutdown()


# -- IPNs: one certificate authority for the session (RSA key generation is slow), a receiver per test --


@pytest.fixture(scope="session")
def authority() -> LocalAuthority:
    return LocalAuthority.create()


@pytest.fixture
def receiver() -> Iterator[IpnReceiver]:
    receiver = IpnReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


FAST_RETRY = RetryPolicy(max_attempts=4, first_delay=0.05, multiplier=2.0, max_delay=0.2, timeout=2.0)


@pytest.fixture
def ipn_served(authority: LocalAuthority, receiver: IpnReceiver) -> Iterator[SimClient]:
    """A served simulator posting IPNs to `receiver`, redelivering fast."""
    sim = Simulator(
        settle_seconds=3600, throttling=False, authority=authority, ipn_url=receiver.url, ipn_retry=FAST_RETRY
    )
    handle = sim.serve(host="127.0.0.1", port=0)
    try:
        yield SimClient(handle)
    finally:
        handle.shutdown()
