"""A client of the simulator served over HTTP on 127.0.0.1 (integration tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from amazon_pay_sim.server import ServerHandle
from amazon_pay_sim.simulator import MWS_PATH
from tests.support.sim import Answer, signed_body


class SimClient:
    """Talks to a served simulator over real HTTP: signed MWS calls and the JSON control API."""

    def __init__(self, handle: ServerHandle) -> None:
        self.handle = handle
        self.host = f"127.0.0.1:{handle.port}"

    def mws(
        self, action: str, params: Mapping[str, str] | None = None, *, timeout: float = 5, **kw: Any
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
