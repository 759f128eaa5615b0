"""Lambda execution environments for the local stack: a process each, a pool of them per function.

As Lambda runs a function: an environment handles one event at a time; when every environment of the
function is busy, a new one starts (a cold start, logged) up to the function's concurrency limit; an idle
one is reused (warm). Each environment is a process of its own, so module state (Powertools' resolver keeps
the current event on its class, `runtime`'s per-container caches), the environment variables (the function's
role credentials, as Lambda sets them), `/tmp` (TMPDIR, a directory per environment) and stdout are its own,
and environments of one function really run in parallel against the one moto server.

Processes are forked from a zygote: one process, started with the first environment, that has imported the
heavy libraries once (boto3, botocore with the service models the handlers use, Powertools, the shared
layer; environment_preload.py) and forks an environment on request, handing it a socket to the stack's
process (socket.send_fds). A cold start so costs a fork and the handler module's import, not a Python
start-up. The zygote ends when the stack's process closes its end (or ends); an environment ends when its
socket closes, or is killed by its pid.

What an environment prints (the handler's log lines, its metric blobs) is relayed line by line to this
process's stdout/stderr, whole lines only, so that lines of concurrent invocations never merge.

An invocation past the function's Timeout is ended as Lambda ends it: the environment is stopped (its
process killed) and the invocation fails with "Task timed out". Beyond the concurrency limit an invocation
waits for an environment to be free, up to the time its caller allows (Lambda would throttle a synchronous
call with 429 and retry an asynchronous one later); that wait is logged.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

logger = logging.getLogger("refunds_local.environments")

# The local default of a function's concurrency when the template reserves none (Lambda's account limit
# is 1000; a laptop runs fewer processes). `refunds-local --max-environments` changes it.
DEFAULT_MAX_ENVIRONMENTS = 50
# An environment idle this long is stopped (Lambda reclaims idle ones after some minutes), down to one per
# function: after a burst the processes go, the warm one stays.
IDLE_ENVIRONMENT_SECONDS = 60.0
# Lambda's init phase limit: an environment whose handler does not load in this time fails the invocation.
INIT_TIMEOUT_SECONDS = 10.0
PRELOAD_MODULE = "refunds_local.environment_preload"


class _Zygote:
    """The process environments are forked from (see the module's docstring); one per stack process."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self._control = ours
        code = "from refunds_local.environments import zygote_main; zygote_main()"
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed command
            [sys.executable, "-c", code, str(theirs.fileno()), json.dumps(sys.path)],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._lock = threading.Lock()

    def fork(self) -> tuple[int, Connection]:
        """A new environment process: its pid and the connection to it."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                socket.send_fds(self._control, [b"fork"], [theirs.fileno()])
                answer = b""
                while not answer.endswith(b"\n"):
                    chunk = self._control.recv(64)
                    if not chunk:
                        raise OSError("the environments' zygote has ended")
                    answer += chunk
        finally:
            theirs.close()
        return int(answer), Connection(ours.detach())

    @property
    def alive(self) -> bool:
        return self._process.poll() is None


_ZYGOTE_LOCK = threading.Lock()
_ZYGOTE: _Zygote | None = None


def start_zygote() -> None:
    """Start the zygote now (it preloads meanwhile, in a process of its own), not at the first cold start."""
    _zygote()


def _zygote() -> _Zygote:
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or not _ZYGOTE.alive:
            _ZYGOTE = _Zygote()
        return _ZYGOTE


def zygote_main() -> None:
    """The zygote's process: preload, then fork an environment for each socket the stack sends."""
    control = socket.socket(fileno=int(sys.argv[1]))
    for entry in json.loads(sys.argv[2]):
        if entry not in sys.path:
            sys.path.append(entry)
    importlib.import_module(PRELOAD_MODULE)
    gc.freeze()  # the preloaded objects stay shared with the forks: their collections do not touch them
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # environments are reaped by the system
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the stack's to handle
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 1)
        except OSError:
            return
        if not message or not fds:
            return  # the stack's process has closed its end
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                serve(Connection(fds[0]))
            except BaseException:  # the environment ends; the stack sees its socket close
                code = 1
            finally:
                os._exit(code)
        os.close(fds[0])
        control.sendall(f"{pid}\n".encode())


class HandlerUnavailable(Exception):
    """The handler's module cannot be imported, or has no such function."""


class FunctionTimedOut(Exception):
    """The invocation ran past the function's Timeout (Lambda's "Task timed out")."""


class FunctionError(Exception):
    """The handler raised in its environment (or its result is not JSON): Lambda's error payload."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str], text: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.stack_trace = stack_trace
        self.text = text  # the traceback as the environment printed it


class NoEnvironmentFree(FunctionTimedOut):
    """Every environment of the function stayed busy (at its concurrency limit) for as long as allowed."""


@dataclass(frozen=True)
class Launch:
    """What an environment process needs: the handler and the variables, path and identity to run it in."""

    function_name: str
    logical_id: str
    reference: str
    environment: Mapping[str, str]
    sys_path: tuple[str, ...]
    memory_mb: int
    arn: str


class ProcessEnvironment:
    """One execution environment: a process that loads the handler, then runs one event at a time."""

    def __init__(self, launch: Launch, number: int) -> None:
        self.launch = launch
        self.number = number
        self.tmp = tempfile.mkdtemp(prefix=f"refunds-local-{launch.logical_id}-{number}-")
        try:
            self._pid, self._connection = _zygote().fork()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        environment = {**launch.environment, "TMPDIR": self.tmp}
        self._connection.send({**_launch_fields(launch), "environment": environment})
        self.alive = True
        self.idle_since = time.monotonic()

    @property
    def pid(self) -> int:
        return self._pid

    def initialise(self, timeout: float = INIT_TIMEOUT_SECONDS) -> None:
        """Wait until the handler is loaded (the init phase); HandlerUnavailable when it cannot be."""
        message = self._receive(time.monotonic() + timeout, what="init")
        if message is None:
            self.stop(kill=True)
            raise HandlerUnavailable(
                f"{self.launch.function_name}: init did not finish within {timeout:.2f} seconds"
            )
        if message[0] == "init_error":
            self.stop()
            raise HandlerUnavailable(message[1])

    def run(self, event: Any, request_id: str, timeout: float) -> Any:
        """The handler's result (JSON-decoded); FunctionError, or FunctionTimedOut (the process then ends)."""
        try:
            self._connection.send(("invoke", json.dumps(event), request_id, timeout))
        except (OSError, ValueError) as error:
            self.stop()
            raise FunctionError("Runtime.ExitError", f"the environment has ended: {error}", [], "") from None
        message = self._receive(time.monotonic() + timeout, what="invoke")
        if message is None:
            self.stop(kill=True)  # Lambda ends the environment of a timed-out invocation
            raise FunctionTimedOut(f"{request_id} Task timed out after {timeout:.2f} seconds")
        if message[0] == "result":
            return json.loads(message[1])
        _, error_type, error_message, stack_trace, text = message
        raise FunctionError(error_type, error_message, stack_trace, text)

    def _receive(self, deadline: float, *, what: str) -> tuple[Any, ...] | None:
        """The environment's next answer, relaying its output meanwhile; None past the deadline."""
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or not self._connection.poll(remaining):
                    return None
                message: tuple[Any, ...] = self._connection.recv()
            except (EOFError, OSError):
                self.stop()
                raise FunctionError(
                    "Runtime.ExitError",
                    f"{self.launch.function_name}: the environment exited during {what}",
                    [],
                    "",
                ) from None
            if message[0] == "log":
                stream = sys.stderr if message[1] == "stderr" else sys.stdout
                stream.write(message[2])
                stream.flush()
                continue
            return message

    def stop(self, *, kill: bool = False) -> None:
        """End the environment and remove its /tmp: an idle one ends on its own once its socket closes; a
        busy one (`kill`: its invocation timed out) is killed, by its pid, while it cannot have exited."""
        if self.alive:
            self.alive = False
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
            self._connection.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


def _launch_fields(launch: Launch) -> dict[str, Any]:
    return {
        "function_name": launch.function_name,
        "logical_id": launch.logical_id,
        "reference": launch.reference,
        "sys_path": list(launch.sys_path),
        "memory_mb": launch.memory_mb,
        "arn": launch.arn,
    }


class Pool:
    """A function's environments: idle ones reused (the most recent first), new ones up to `limit`."""

    def __init__(
        self,
        name: str,
        limit: int,
        create: Callable[[int], ProcessEnvironment],
        idle_seconds: float = IDLE_ENVIRONMENT_SECONDS,
    ) -> None:
        self.name = name
        self.limit = max(1, limit)
        self.idle_seconds = idle_seconds
        self._reaper: threading.Thread | None = None
        self._reaper_wake = threading.Event()
        self._create = create
        self._idle: list[ProcessEnvironment] = []
        self._count = 0  # idle, busy and starting
        self._started = 0
        self._generation = 0
        self._condition = threading.Condition()
        self.cold_starts = 0

    @property
    def size(self) -> int:
        with self._condition:
            return self._count

    def acquire(self, wait: float) -> tuple[ProcessEnvironment, int]:
        """An environment for one invocation (a cold start when none is idle and the limit allows), and the
        pool's generation it belongs to; NoEnvironmentFree after `wait` seconds at the limit."""
        deadline = time.monotonic() + wait
        waited = False
        with self._condition:
            while not self._idle and self._count >= self.limit:
                if not waited:
                    logger.info("%s: all %d environments busy; the invocation waits", self.name, self.limit)
                    waited = True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._condition.wait(remaining):
                    if self._idle or self._count < self.limit:
                        break
                    raise NoEnvironmentFree(
                        f"{self.name}: no execution environment free after {wait:.2f} seconds "
                        f"({self.limit} busy, the function's concurrency limit)"
                    )
            generation = self._generation
            if self._idle:
                return self._idle.pop(), generation
            self._count += 1
            self._started += 1
            number = self._started
        started = time.monotonic()
        try:
            environment = self._create(number)
            environment.initialise()
        except BaseException:
            with self._condition:
                self._count -= 1
                self._condition.notify()
            raise
        with self._condition:
            self.cold_starts += 1
        logger.info(
            "%s: cold start of environment %d (pid %s, %.0f ms)",
            self.name,
            number,
            environment.pid,
            (time.monotonic() - started) * 1000,
        )
        return environment, generation

    def release(self, environment: ProcessEnvironment, generation: int) -> None:
        """Back to the idle ones, unless it ended (timed out, crashed) or the pool was reset meanwhile."""
        with self._condition:
            keep = environment.alive and generation == self._generation
            if keep:
                environment.idle_since = time.monotonic()
                self._idle.append(environment)
                if len(self._idle) > 1 and self._reaper is None:
                    self._reaper = threading.Thread(
                        target=self._reap, name=f"reaper-{self.name}", daemon=True
                    )
                    self._reaper.start()
            else:
                self._count -= 1
            self._condition.notify()
        if not keep:
            environment.stop()

    def reset(self) -> None:
        """Stop the idle environments; busy ones are stopped when their invocation ends."""
        with self._condition:
            self._generation += 1
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._condition.notify_all()
        self._reaper_wake.set()
        for environment in idle:
            environment.stop()

    def _reap(self) -> None:
        """Stop environments idle for `idle_seconds`, the oldest first, down to one; runs only while more
        than one is idle (it waits for the next expiry, it does not poll)."""
        while True:
            with self._condition:
                self._reaper_wake.clear()  # a reset from here on ends the wait below
                if len(self._idle) <= 1:
                    self._reaper = None
                    return
                oldest = self._idle[0]
                wait = oldest.idle_since + self.idle_seconds - time.monotonic()
                if wait <= 0:
                    self._idle.pop(0)
                    self._count -= 1
                    self._condition.notify()
            if wait > 0:
                self._reaper_wake.wait(wait)
                continue
            logger.info(
                "%s: environment %d stopped after %.0f s idle", self.name, oldest.number, self.idle_seconds
            )
            oldest.stop()


# --- inside an environment's process ---------------------------------------------------------------------


class _Relay(io.TextIOBase):
    """stdout/stderr of an environment: each complete line is sent to the stack's process as one message."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None], stream: str) -> None:
        self._send = send
        self._stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            while "\n" in self._pending:
                line, _, self._pending = self._pending.partition("\n")
                self._send(("log", self._stream, line + "\n"))
        return len(text)

    def flush(self) -> None:
        pass


def serve(connection: Connection) -> None:
    """The environment's process: set its variables, load the handler, then answer one event at a time."""
    launch: dict[str, Any] = connection.recv()
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            connection.send(message)

    os.environ.clear()
    os.environ.update(launch["environment"])
    tempfile.tempdir = None  # TMPDIR is read again: this environment's own /tmp
    for entry in launch["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    sys.stdout = _Relay(send, "stdout")
    sys.stderr = _Relay(send, "stderr")
    from refunds_local.environment_preload import default_session
    from refunds_local.lambdas import LocalLambdaContext, resolve_handler

    default_session()  # boto3's default session, on the service models loaded once by the forkserver
    try:
        handler = resolve_handler(launch["reference"])
    except HandlerUnavailable as error:
        send(("init_error", str(error)))
        return
    except Exception as error:  # Lambda's Runtime.ImportModuleError: reported, not raised
        send(("init_error", f"cannot import {launch['reference']}: {type(error).__name__}: {error}"))
        return
    send(("ready",))
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # the stack has gone
        _, event_json, request_id, timeout = message
        context = LocalLambdaContext(
            function_name=launch["function_name"],
            invoked_function_arn=launch["arn"],
            memory_limit_in_mb=launch["memory_mb"],
            aws_request_id=request_id,
            deadline=time.monotonic() + float(timeout),
            log_group_name=f"/aws/lambda/{launch['function_name']}",
            log_stream_name=f"local/[$LATEST]{request_id.replace('-', '')}",
        )
        try:
            result = handler(json.loads(event_json), context)
        except Exception as error:  # handed to the caller, as Lambda's runtime does
            text = "".join(traceback.format_exception(error))
            send(("error", type(error).__name__, str(error), traceback.format_tb(error.__traceback__), text))
            continue
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as error:
            send(("error", "Runtime.MarshalError", f"the result is not JSON: {error}", [], ""))
            continue
        send(("result", payload))
