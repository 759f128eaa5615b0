"""The unit suite's guard (tests/unit/conftest.py) refuses sockets."""

from __future__ import annotations

import socket

import pytest


def test_a_unit_test_cannot_open_a_socket() -> None:
    with pytest.raises(AssertionError, match="unit tests open no sockets"):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
