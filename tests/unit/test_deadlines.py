"""The one call loop of both Amazon Pay clients (deadlines.RetryingTransport) and its redaction, on their own:
a fake clock, an attempt that does what the test says, no HTTP."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amazon_pay_refunds.deadlines import (
    MAX_MESSAGE,
    MIN_ATTEMPT_SECONDS,
    AmazonCallError,
    Answer,
    RetryingTransport,
    Signed,
    redact,
)
from tests.support.http_fakes import FakeClock, FixedRandom

SECRET = "s3cr3t/KEY+with=signs"
SIGNATURE = "SIG-abc/def+ghi="


class Failure(AmazonCallError):
    def __init__(
        self, code: str, message: str = "", *, retryable: bool, http_status: int | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = f"rid-{code}"
        self.retryable = retryable
        super().__init__(code, message)

    def with_message(self, message: str) -> Failure:
        return Failure(self.code, message, retryable=self.retryable, http_status=self.http_status)


@dataclass
class Server:
    """Plays a script of outcomes, one an attempt: a result, or a Failure to raise. Each attempt lasts
    ``takes`` seconds on the clock, or its whole (connect + read) timeout when ``takes`` is None."""

    clock: FakeClock
    script: list[str | Failure]
    takes: float | None = 0.0
    signed: list[int] = field(default_factory=list)
    timeouts: list[tuple[float, float]] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)

    def sign(self) -> Signed[int]:
        self.signed.append(len(self.signed) + 1)
        return Signed(self.signed[-1], (SECRET, None, f"{SIGNATURE}{self.signed[-1]}"))

    def send(self, request: int, timeout: tuple[float, float]) -> Answer[str]:
        assert request == self.signed[-1], "each attempt sends the request signed for it"
        self.timeouts.append(timeout)
        self.sent_at.append(self.clock.t)
        self.clock.t += sum(timeout) if self.takes is None else self.takes
        outcome = self.script.pop(0)
        if isinstance(outcome, Failure):
            raise outcome
        return Answer(outcome, 200, "rid-ok")


def transport(clock: FakeClock, *, max_attempts: int = 4, base_delay: float = 1.0, rng: float = 1.0,
              timeout: tuple[float, float] = (3.05, 10.0)) -> RetryingTransport:  # fmt: skip
    return RetryingTransport(
        api="Amazon Pay test", logger=logging.getLogger("tests.deadlines"), timeout=timeout,
        max_attempts=max_attempts, base_delay=base_delay, max_delay=10.0, sleep=clock.sleep,
        monotonic=clock.monotonic, rng=FixedRandom(rng),
    )  # fmt: skip


def not_sent(message: str) -> Failure:
    return Failure("NotSent", message, retryable=True)


def call(t: RetryingTransport, server: Server, deadline: float | None = None) -> str:
    return t.call("Op", sign=server.sign, send=server.send, not_sent=not_sent, deadline=deadline,
                  seller_id="A1SELLER")  # fmt: skip


def retryable(code: str = "Throttled", message: str = "") -> Failure:
    return Failure(code, message, retryable=True, http_status=503)


def permanent(code: str = "InvalidParameterValue", message: str = "") -> Failure:
    return Failure(code, message, retryable=False, http_status=400)


# -- which errors are retried ------------------------------------------------------------------------


def test_a_retryable_error_is_retried_with_a_freshly_signed_attempt_until_it_succeeds() -> None:
    clock = FakeClock()
    server = Server(clock, [retryable(), retryable(), "done"])
    assert call(transport(clock), server) == "done"
    assert server.signed == [1, 2, 3]
    assert clock.sleeps == [1.0, 2.0]  # full jitter at its ceiling (rng 1.0): 1 s, then 2 s


def test_an_error_that_is_not_retryable_is_raised_after_one_attempt() -> None:
    clock = FakeClock()
    server = Server(clock, [permanent(), "never sent"])
    with pytest.raises(Failure) as caught:
        call(transport(clock), server)
    assert caught.value.code == "InvalidParameterValue"
    assert server.signed == [1] and clock.sleeps == []


def test_after_max_attempts_the_last_retryable_error_is_raised() -> None:
    clock = FakeClock()
    server = Server(clock, [retryable("A"), retryable("B"), retryable("C"), "never sent"])
    with pytest.raises(Failure) as caught:
        call(transport(clock, max_attempts=3), server)
    assert caught.value.code == "C"
    assert server.signed == [1, 2, 3] and len(clock.sleeps) == 2


def test_an_exception_that_is_not_the_clients_error_is_not_retried_nor_caught() -> None:
    clock = FakeClock()

    class Bug(Server):
        def send(self, request: int, timeout: tuple[float, float]) -> Answer[str]:
            raise KeyError("a bug")

    server = Bug(clock, [])
    with pytest.raises(KeyError):
        call(transport(clock), server)
    assert server.signed == [1]


def test_settings_that_cannot_work_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        transport(FakeClock(), max_attempts=0)
    with pytest.raises(ValueError, match="timeouts"):
        transport(FakeClock(), timeout=(0.0, 1.0))


# -- the deadline ------------------------------------------------------------------------------------


def test_a_passed_deadline_sends_nothing_and_raises_the_clients_not_sent_error() -> None:
    clock = FakeClock()
    server = Server(clock, ["never sent"])
    with pytest.raises(Failure) as caught:
        call(transport(clock), server, deadline=clock.t + MIN_ATTEMPT_SECONDS / 2)
    assert caught.value.code == "NotSent" and "Op not sent: the deadline has passed" in caught.value.message
    assert server.signed == []


def test_when_no_retry_fits_before_the_deadline_the_last_error_is_raised_without_sleeping() -> None:
    clock = FakeClock()
    server = Server(clock, [retryable("Busy"), "never sent"])
    with pytest.raises(Failure) as caught:
        call(transport(clock, base_delay=5.0), server, deadline=clock.t + 3.0)
    assert caught.value.code == "Busy"
    assert clock.sleeps == [] and server.signed == [1]


@settings(max_examples=200, deadline=None)
@given(
    budget=st.floats(min_value=0.0, max_value=40.0),
    rng=st.floats(min_value=0.0, max_value=1.0),
    base_delay=st.floats(min_value=0.0, max_value=8.0),
    failures=st.integers(min_value=0, max_value=6),
    slow=st.booleans(),
)
def test_the_deadline_is_never_passed(budget: float, rng: float, base_delay: float, failures: int,
                                      slow: bool) -> None:  # fmt: skip
    """Whatever the budget, backoff and answers: no attempt starts with less than MIN_ATTEMPT_SECONDS
    left, an attempt's timeouts end by the deadline, and the loop never sleeps past it. ``slow``: every
    attempt lasts its whole timeout (a server that never answers)."""
    clock = FakeClock()
    deadline = clock.t + budget
    server = Server(clock, [retryable() for _ in range(failures)] + ["done"], takes=None if slow else 0.05)
    with contextlib.suppress(Failure):  # raised when the budget runs out first: what is checked is below
        call(transport(clock, max_attempts=5, base_delay=base_delay, rng=rng), server, deadline=deadline)
    for at, timeout in zip(server.sent_at, server.timeouts, strict=True):
        assert deadline - at >= MIN_ATTEMPT_SECONDS
        assert at + timeout[0] + timeout[1] <= deadline + 1e-9
    assert clock.t <= deadline + 1e-9


# -- redaction ---------------------------------------------------------------------------------------


def test_every_error_leaves_the_loop_without_the_attempts_secrets() -> None:
    clock = FakeClock()
    echo = f"you sent key={SECRET} sig={SIGNATURE}2 encoded={quote(SECRET, safe='')}"
    server = Server(clock, [retryable("Busy", "first"), permanent("Bad", echo)])
    with pytest.raises(Failure) as caught:
        call(transport(clock), server)
    assert caught.value.message == "you sent key=*** sig=*** encoded=***"


def test_redaction_replaces_secrets_as_written_and_percent_encoded() -> None:
    secrets = [SECRET, None, ""]
    assert redact(f"a {SECRET} b {quote(SECRET, safe='-_.~')} c", secrets) == "a *** b *** c"


def test_redaction_replaces_a_longer_secret_whole_before_a_secret_inside_it() -> None:
    header = f"AMZN-PAY-RSASSA-PSS-V2 PublicKeyId=K, SignedHeaders=accept, Signature={SIGNATURE}"
    for order in ([SIGNATURE, header], [header, SIGNATURE]):
        assert redact(f"echo: {header}; again {SIGNATURE}", order) == "echo: ***; again ***"


@pytest.mark.parametrize("offset", [-30, -10, -1, 0, 1, 10])
def test_redaction_comes_before_the_cut_at_the_message_limit(offset: int) -> None:
    message = "x" * (MAX_MESSAGE + offset - len(SECRET) // 2) + SECRET + "y" * 40
    shown = redact(message, [SECRET])
    assert len(shown) <= MAX_MESSAGE
    half = len(SECRET) // 2
    assert SECRET[:half] not in shown and SECRET[half:] not in shown


def test_a_message_without_secrets_is_only_bounded() -> None:
    assert redact("y" * 5000, [SECRET]) == "y" * MAX_MESSAGE
    assert redact("short", []) == "short"


# -- logs ---------------------------------------------------------------------------------------------


def test_each_attempt_is_logged_with_its_outcome_and_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tests.deadlines")
    clock = FakeClock()
    server = Server(clock, [retryable("Busy", f"echo {SECRET}"), "done"])
    transport(clock).call("Op", sign=server.sign, send=server.send, not_sent=not_sent, deadline=None,
                          seller_id="A1SELLER", public_key_id="KEY1")  # fmt: skip
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Amazon Pay test Op seller=A1SELLER public_key_id=KEY1 attempt=1 outcome=Busy http_status=503 "
        "request_id=rid-Busy",
        "Amazon Pay test Op seller=A1SELLER public_key_id=KEY1 attempt=2 outcome=ok http_status=200 "
        "request_id=rid-ok",
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]
    assert SECRET not in caplog.text
