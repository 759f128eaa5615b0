"""Importing the handler does no I/O: everything is built lazily through runtime (cold start)."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_importing_the_handler_opens_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the handler opened a connection at import")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("REFUNDS_TABLE", raising=False)  # no configuration needed to import
    sys.modules.pop("functions.refund_api.app", None)
    module = importlib.import_module("functions.refund_api.app")
    assert callable(module.lambda_handler)
