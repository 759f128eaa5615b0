"""Virtual time and cooperative tasks: concurrency that is interleaved at step granularity, deterministically.

Each handler invocation runs in a thread of its own, but only one thread ever runs at a time: a task runs
until it reaches a yield point (every DynamoDB call, every Amazon call, every fault hook) and then hands the
baton back to the scheduler, which picks what runs next from the seeded random generator. So two requests,
an IPN and the reconciler can interleave between any two of their I/O steps, and a seed replays exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

# A fixed instant, so that every stored timestamp (and so every trace) is the same on every run.
EPOCH = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


class VirtualClock:
    """The one clock of a simulation: the services' `now`, the client's `monotonic`/`sleep`, the simulator's
    wall clock. Time moves only when the scheduler advances it, or when a call 'waits' (timeouts, backoff)."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return 10_000.0 + self.elapsed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.elapsed += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class Crash(BaseException):
    """The Lambda's process dies here (BaseException: no `except Exception` in the service swallows it)."""


_local = threading.local()


class Task:
    """One invocation (a request, an IPN, a reconciler run, a workflow step): a cooperative thread."""

    def __init__(self, scheduler: Scheduler, number: int, name: str, body: Callable[[], Any]) -> None:
        self.scheduler = scheduler
        self.number = number
        self.name = name
        self.body = body
        self.label = "start"
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.deadline: float | None = None  # virtual time after which the Lambda runtime kills it
        self.kill_reason: str | None = None
        self._go = threading.Semaphore(0)
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"T{self.number}:{self.name}"

    def _run(self) -> None:
        self._go.acquire()
        _local.task = self
        try:
            self.result = self.body()
        except BaseException as error:  # a crash, or an error the invocation answers with
            self.error = error
        finally:
            self.done = True
            self.scheduler._back.release()

    def resume(self) -> None:
        if self.done:
            raise RuntimeError(f"{self} already finished")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=repr(self), daemon=True)
            self._thread.start()
        self._go.release()
        self.scheduler._back.acquire()

    def pause(self, label: str) -> None:
        self.label = label
        self.scheduler._back.release()
        self._go.acquire()
        if self.kill_reason is not None:
            raise Crash(self.kill_reason)

    def kill(self, reason: str) -> None:
        """End the invocation at its current yield point, as the Lambda runtime does at its timeout."""
        self.kill_reason = reason
        if self._thread is None:
            self.done = True
            self.error = Crash(reason)
            return
        self.resume()


class Scheduler:
    """Runs tasks one slice (up to the next yield point) at a time; the caller decides which."""

    def __init__(self) -> None:
        self._back = threading.Semaphore(0)
        self.tasks: list[Task] = []
        self._numbers = 0

    def spawn(self, name: str, body: Callable[[], Any]) -> Task:
        self._numbers += 1
        task = Task(self, self._numbers, name, body)
        self.tasks.append(task)
        return task

    @property
    def spawned(self) -> int:
        """How many tasks were spawned so far: a task numbered above it starts later."""
        return self._numbers

    def live(self) -> list[Task]:
        return [t for t in self.tasks if not t.done]

    def forget_done(self) -> None:
        self.tasks = [t for t in self.tasks if not t.done]

    @staticmethod
    def current() -> Task | None:
        task: Task | None = getattr(_local, "task", None)
        return task

    @classmethod
    def yield_point(cls, label: str) -> None:
        """Called from instrumented code: let the scheduler run something else (no-op outside a task)."""
        task = cls.current()
        if task is not None:
            task.pause(label)

    def run_to_end(self, task: Task) -> None:
        while not task.done:
            task.resume()
