"""Retrying within a caller's deadline: shared by the Amazon Pay v1 (MWS) and v2 clients.

A ``deadline`` is an absolute ``time.monotonic()`` value. No attempt starts with less than
`MIN_ATTEMPT_SECONDS` left, an attempt's (connect, read) timeouts are scaled down to fit the time left, and
the backoff between attempts is exponential with full jitter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

# An attempt is not started with less time than this before the deadline: it could not get an answer.
MIN_ATTEMPT_SECONDS = 0.2
_DEFAULT_PORTS = {"https": 443, "http": 80}


class RandomSource(Protocol):
    def random(self) -> float: ...


def deadline_in(seconds: float, *, monotonic: Callable[[], float] = time.monotonic) -> float:
    """An absolute deadline ``seconds`` from now, on the clock ``deadline`` arguments use."""
    return monotonic() + seconds


def attempt_timeouts(
    timeout: tuple[float, float], deadline: float | None, now: float
) -> tuple[float, float] | None:
    """(connect, read) timeouts whose sum stays within the deadline; None when no time is left."""
    connect, read = timeout
    if deadline is None:
        return connect, read
    remaining = deadline - now
    if remaining < MIN_ATTEMPT_SECONDS:
        return None
    if connect + read > remaining:
        scale = remaining / (connect + read)
        connect, read = connect * scale, read * scale
    return connect, read


def full_jitter(attempt: int, base_delay: float, max_delay: float, rng: RandomSource) -> float:
    """Uniform in [0, min(max_delay, base_delay * 2**(attempt-1)))."""
    ceiling = min(max_delay, base_delay * (1 << (attempt - 1)))
    return ceiling * rng.random()


def fits_before(deadline: float | None, now: float, delay: float) -> bool:
    """Whether sleeping ``delay`` still leaves time for one more attempt."""
    return deadline is None or now + delay + MIN_ATTEMPT_SECONDS <= deadline


def host_without_default_port(scheme: str, host: str) -> str:
    """A host as sent and signed: lower-case, with the port only when not the scheme's default."""
    host = host.lower()
    name, sep, port = host.rpartition(":")
    bare_name = name.endswith("]") or ":" not in name  # not a colon inside an unbracketed IPv6 address
    if sep and bare_name and port.isdigit() and int(port) == _DEFAULT_PORTS.get(scheme):
        return name
    return host


def check_retry_settings(
    max_attempts: int, base_delay: float, max_delay: float, timeout: tuple[float, float]
) -> None:
    """A client's retry settings, refused at construction rather than misbehaving on the first failure."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if base_delay < 0 or max_delay < 0:
        raise ValueError("delays must not be negative")
    if timeout[0] <= 0 or timeout[1] <= 0:
        raise ValueError("timeouts must be positive")
