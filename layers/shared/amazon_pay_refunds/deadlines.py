"""Retrying within a caller's deadline: the one call loop of the Amazon Pay v1 (MWS) and v2 clients.

A ``deadline`` is an absolute ``time.monotonic()`` value. No attempt starts with less than
`MIN_ATTEMPT_SECONDS` left, an attempt's (connect, read) timeouts are scaled down to fit the time left, and
the backoff between attempts is exponential with full jitter.

`RetryingTransport.call` is the loop; a client gives it what differs between the APIs: how to build and
sign an attempt (afresh each time: a new timestamp, a new signature), how to send it and read the answer
(its error type says whether the error is retryable), and which secrets the signed attempt holds. Every
error an attempt raises leaves the loop only through `redact`: its message without those secrets, then
bounded to `MAX_MESSAGE` characters.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypedDict, TypeVar
from urllib.parse import quote

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


# -- secrets out of error messages ------------------------------------------------------------------------

# What of an error's text a caller, a log line or an event ever sees.
MAX_MESSAGE = 1000
REDACTED = "***"


def redact(message: str, secrets: Iterable[str | None]) -> str:
    """``message`` with every secret replaced by ``***``, then cut to `MAX_MESSAGE` characters.

    A server or proxy may echo the request in its error text. Each secret is replaced as written and as
    percent-encoded (a form body or URL carries it so), longest first (a secret inside another, such as a
    signature inside the Authorization header, cannot leave the rest of the longer one behind). The cut
    comes last: cutting first could leave a part of a secret that no replacement then recognises.
    """
    forms = {form for secret in secrets if secret for form in (secret, quote(secret, safe="-_.~"))}
    for form in sorted(forms, key=len, reverse=True):
        message = message.replace(form, REDACTED)
    return message[:MAX_MESSAGE]


class AmazonCallError(Exception):
    """What the loop reads of a client's error (`AmazonPayError`, `PayV2Error`): whether sending the same
    call again may succeed, what to log, and a copy with a redacted message."""

    code: str
    message: str
    http_status: int | None
    request_id: str | None
    retryable: bool

    def with_message(self, message: str) -> AmazonCallError:
        raise NotImplementedError


# -- the call loop ----------------------------------------------------------------------------------------

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class Signed(Generic[R]):
    """One attempt, built and signed: the request, and every secret it holds or was made with (keys,
    tokens, the signature) that no error message may show."""

    request: R
    secrets: tuple[str | None, ...]


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A successful attempt: the parsed result, the HTTP status and Amazon's request id (for the log)."""

    result: T
    http_status: int
    request_id: str | None


class RetrySettings(TypedDict, total=False):
    """The retry settings both clients take as keyword arguments (defaults: `RetryingTransport`).

    ``timeout``: (connect, read) seconds of one attempt, scaled down to fit the deadline; ``max_attempts``;
    ``base_delay``/``max_delay``: the backoff's ceiling doubles from base_delay up to max_delay; ``sleep``,
    ``monotonic`` and ``rng`` (the jitter's random source) are replaced by tests."""

    timeout: tuple[float, float]
    max_attempts: int
    base_delay: float
    max_delay: float
    sleep: Callable[[float], None]
    monotonic: Callable[[], float]
    rng: RandomSource | None


class RetryingTransport:
    """The retry settings of one client and the loop that applies them. Refused at construction if the
    settings cannot work (`check_retry_settings`). ``api`` names the API in log lines ("Amazon Pay")."""

    def __init__(
        self,
        *,
        api: str,
        logger: logging.Logger,
        timeout: tuple[float, float] = (3.05, 10.0),
        max_attempts: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: RandomSource | None = None,
    ) -> None:
        check_retry_settings(max_attempts, base_delay, max_delay, timeout)
        self._api = api
        self._logger = logger
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng: RandomSource = rng or random.Random()  # jitter, not security

    def call(
        self,
        operation: str,
        *,
        sign: Callable[[], Signed[R]],
        send: Callable[[R, tuple[float, float]], Answer[T]],
        not_sent: Callable[[str], AmazonCallError],
        deadline: float | None,
        seller_id: str,
        public_key_id: str | None = None,
    ) -> T:
        """Send ``operation`` until it succeeds, fails with an error that is not retryable, runs out of
        attempts, or could not be answered before ``deadline``; then raise the last error, redacted.

        ``sign`` builds a fresh signed attempt; ``send`` sends it with the given (connect, read) timeouts
        and returns the answer or raises an `AmazonCallError`; ``not_sent`` makes the error raised when the
        deadline has passed before any attempt. ``seller_id`` and ``public_key_id`` name the caller in logs.
        """
        last_error: AmazonCallError | None = None
        for attempt in range(1, self._max_attempts + 1):
            timeout = attempt_timeouts(self._timeout, deadline, self._monotonic())
            if timeout is None:
                raise last_error or not_sent(f"{operation} not sent: the deadline has passed")
            signed = sign()
            try:
                answer = send(signed.request, timeout)
            except AmazonCallError as error:
                last_error = error.with_message(redact(error.message, signed.secrets))
            else:
                self._log(logging.INFO, operation, seller_id, public_key_id, attempt, "ok", answer.request_id,
                          answer.http_status)  # fmt: skip
                return answer.result
            self._log(logging.WARNING, operation, seller_id, public_key_id, attempt, last_error.code,
                      last_error.request_id, last_error.http_status)  # fmt: skip
            if not last_error.retryable or attempt == self._max_attempts:
                raise last_error
            delay = full_jitter(attempt, self._base_delay, self._max_delay, self._rng)
            if not fits_before(deadline, self._monotonic(), delay):
                raise last_error
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _log(
        self,
        level: int,
        operation: str,
        seller_id: str,
        public_key_id: str | None,
        attempt: int,
        outcome: str,
        request_id: str | None,
        http_status: int | None,
    ) -> None:
        key = f" public_key_id={public_key_id}" if public_key_id is not None else ""
        self._logger.log(
            level,
            "%s %s seller=%s%s attempt=%d outcome=%s http_status=%s request_id=%s",
            self._api, operation, seller_id, key, attempt, outcome, http_status, request_id,
            extra={
                "amazon_pay_action": operation, "seller_id": seller_id, "attempt": attempt,
                "outcome": outcome, "http_status": http_status, "request_id": request_id,
            },
        )  # fmt: skip
