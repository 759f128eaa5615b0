"""Unit tests run in-process: no sockets (no HTTP servers, no network) and no moto. A test that needs either
belongs in tests/integration (tests/infrastructure/test_test_layout.py checks the imports)."""

from __future__ import annotations

import socket
from typing import NoReturn

import pytest


class SocketInUnitTest(AssertionError):
    """A unit test opened a socket."""


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise SocketInUnitTest("unit tests open no sockets: move this test to tests/integration")

    for method in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, method, refuse)
