from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests

from amazon_pay_sim import Simulator
from amazon_pay_sim.authority import LocalAuthority
from amazon_pay_sim.ipn import RetryPolicy
from amazon_pay_sim.receiver import IpnReceiver
from amazon_pay_sim.server import ServerHandle
from amazon_pay_sim.simulator import MWS_PATH
from tests.unit.sim.support import Answer, signed_body


class SimClient:
    """Talks to a served simulator over real HTTP: signed MWS calls and the JSON control API."""

    def __init__(self, handle: ServerHandle) -> None:
        self.handle = handle
        self.host = f"127.0.0.1:{handle.port}"

    def mws(
        self, action: str, params: Mapping[str, str] | None = None, *, timeout: float = 5, **kw: str
    ) -> Answer:
        body = signed_body(action, params or {}, host=self.host, **kw)
        response = requests.post(self.handle.url + MWS_PATH, data=body, timeout=timeout)
        return Answer(response.status_code, response.text)

    def control(self, method: str, path: str, json: Any = None) -> requests.Response:
        return requests.request(method, f"{self.handle.url}/simulator{path}", json=json, timeout=5)

    def capture(self, amount: str = "100.00", currency: str = "USD", **extra: str) -> str:
        response = self.control("POST", "/captures", {"amount": amount, "currency_code": currency, **extra})
        assert response.status_code == 201, response.text
        return str(response.json()["amazon_capture_id"])


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
