"""Fakes for HTTP clients under test: a clock that only moves when told, a fixed random source, and a
`requests` transport that plays a script of replies and failures and records what was sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    t: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.t += seconds

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.t - 1000.0)


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    elapsed: float = 0.0  # simulated seconds the exchange takes


@dataclass
class Fail:
    error: Exception
    takes_read_timeout: bool = False  # a read timeout lasts as long as the read timeout it was given


@dataclass
class Sent:
    request: requests.PreparedRequest
    timeout: Any
    at: float

    @property
    def form(self) -> dict[str, str]:
        body = self.request.body
        assert isinstance(body, bytes)
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))


class ScriptedAdapter(HTTPAdapter):
    def __init__(self, clock: FakeClock, script: list[Reply | Fail]) -> None:
        super().__init__()
        self.clock = clock
        self.script = script
        self.sent: list[Sent] = []

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:  # fmt: skip
        self.sent.append(Sent(request, timeout, self.clock.t))
        if not self.script:
            raise AssertionError("the client sent more requests than the test expected")
        step = self.script.pop(0)
        if isinstance(step, Fail):
            if step.takes_read_timeout:
                self.clock.t += timeout[0] + timeout[1]
            raise step.error
        self.clock.t += step.elapsed
        response = requests.Response()
        response.status_code = step.status
        response._content = step.body
        response.headers = CaseInsensitiveDict(step.headers)
        response.url = request.url or ""
        response.request = request
        return response
