"""The template's functions, run as Lambda runs them: a pool of execution environments each (environments.py).

Lambda runs one invocation at a time in an execution environment, and the handlers rely on it: they keep
per-invocation state at module or class level (Powertools' resolver stores the current event on its
class). So each invocation gets an environment of its own, a process that imported the handler
(`functions.<folder>.app`) in the function's variables and role; concurrent invocations run in parallel in
as many environments, up to the function's concurrency (ReservedConcurrentExecutions, else the stack's
`max_environments`). An import that fails is retried by the next invocation's new environment, so a handler
folder that appears while the stack runs is picked up.

A test may put a Python callable in place of a handler (`override`): it runs in this process, in a thread of
its own per invocation (a callable cannot be moved to another process, and the test reads what it
recorded), with the function's role for its AWS calls (CURRENT_PRINCIPAL), at most one at a time as one
environment would.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .environments import (
    DEFAULT_MAX_ENVIRONMENTS,
    FunctionError,
    FunctionTimedOut,
    HandlerUnavailable,
    Launch,
    NoEnvironmentFree,
    Pool,
    ProcessEnvironment,
)
from .iam import ACCOUNT_ID, CURRENT_PRINCIPAL, Principal
from .template import REPO, FunctionSpec

__all__ = [
    "FunctionError",
    "FunctionTimedOut",
    "Handler",
    "HandlerUnavailable",
    "LambdaFunction",
    "LocalLambdaContext",
    "NoEnvironmentFree",
    "resolve_handler",
]

logger = logging.getLogger("refunds_local.lambdas")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalLambdaContext:
    """The attributes and method of Lambda's Python context object that handlers and Powertools use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _cold_import(module_name: str) -> ModuleType:
    """Import `module_name` (and its sibling modules) afresh, leaving sys.modules as it was."""
    package, _, leaf = module_name.rpartition(".")
    prefix = f"{package}." if package else module_name

    def ours(name: str) -> bool:
        return name == module_name or (bool(package) and name.startswith(prefix))

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    parent = sys.modules.get(package) if package else None
    saved_attribute = getattr(parent, leaf, None) if parent is not None else None
    for name in saved:
        del sys.modules[name]
    try:
        return importlib.import_module(module_name)
    finally:
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
        parent = sys.modules.get(package) if package else None
        if parent is not None:
            if saved_attribute is not None:
                setattr(parent, leaf, saved_attribute)
            elif hasattr(parent, leaf):
                delattr(parent, leaf)


def resolve_handler(reference: str) -> Handler:
    """ "package.module.function" (or "package.module:function") → that function, imported cold."""
    module_name, separator, name = reference.partition(":")
    if not separator:
        module_name, _, name = reference.rpartition(".")
    if not module_name or not name:
        raise HandlerUnavailable(f"{reference!r} does not name module.function")
    # `functions/` is not an installed package: the repository root is its home, as /var/task is Lambda's.
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    try:
        module = _cold_import(module_name)
    except ImportError as error:
        raise HandlerUnavailable(f"cannot import {module_name}: {error}") from error
    handler = getattr(module, name, None)
    if not callable(handler):
        raise HandlerUnavailable(f"{module_name} has no callable {name!r}")
    loaded: Handler = handler
    return loaded


class LambdaFunction:
    """One function of the template, invocable as Lambda invokes it; its handler can be overridden (tests)."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        stack_name: str,
        region: str,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
    ) -> None:
        self.spec = spec
        self.name = f"{stack_name}-{spec.logical_id}"
        self.arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.name}"
        self._lock = threading.Lock()
        # An overriding callable runs in process, one invocation at a time (one environment); held from an
        # invocation's start until its handler returns (even past a timeout), released by its thread.
        self._in_process = threading.Lock()
        self._handler: Handler | None = None
        self._override: Handler | str | None = None
        # The role session its AWS calls are signed with (iam.py); None: the process's own credentials.
        self.principal: Principal | None = None
        limit = spec.reserved_concurrency if spec.reserved_concurrency is not None else max_environments
        self.pool = Pool(spec.logical_id, limit, self._new_environment)

    @property
    def reference(self) -> str:
        if isinstance(self._override, str):
            return self._override
        if self._override is not None:
            return getattr(self._override, "__qualname__", repr(self._override))
        return f"{self.spec.module}.{self.spec.handler}"

    def override(self, handler: Handler | str | None) -> None:
        """Run `handler` (a callable, or "module.function" imported lazily) instead; None: the template's.
        Environments running the previous handler are retired."""
        with self._lock:
            self._override = handler
            self._handler = handler if handler is not None and not isinstance(handler, str) else None
        self.pool.reset()

    def handler(self) -> Handler:
        """The overriding callable, or the handler imported here (cold) for a caller in this process."""
        with self._lock:
            if self._handler is None:
                self._handler = resolve_handler(self.reference)
                logger.info("%s: loaded %s", self.spec.logical_id, self.reference)
            return self._handler

    def _runs_in_process(self) -> bool:
        with self._lock:
            return self._override is not None and not isinstance(self._override, str)

    def new_context(self, request_id: str | None = None) -> LocalLambdaContext:
        request_id = request_id or str(uuid.uuid4())
        return LocalLambdaContext(
            function_name=self.name,
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.spec.memory_mb,
            aws_request_id=request_id,
            deadline=time.monotonic() + self.spec.timeout_seconds,
            log_group_name=f"/aws/lambda/{self.name}",
            log_stream_name=f"local/[$LATEST]{request_id.replace('-', '')}",
        )

    # -- environments --

    def _launch(self) -> Launch:
        # The stack's variables, as this process has them when the environment starts (the stack sets them).
        environment = dict(os.environ)
        principal = self.principal
        if principal is not None:  # as Lambda passes the execution role's session to the runtime
            environment["AWS_ACCESS_KEY_ID"] = principal.access_key_id
            environment["AWS_SECRET_ACCESS_KEY"] = principal.secret_access_key
            environment["AWS_SESSION_TOKEN"] = principal.session_token
        return Launch(
            function_name=self.name,
            logical_id=self.spec.logical_id,
            reference=self.reference,
            environment=environment,
            sys_path=(*sys.path, str(REPO)),
            memory_mb=self.spec.memory_mb,
            arn=self.arn,
        )

    def _new_environment(self, number: int) -> ProcessEnvironment:
        return ProcessEnvironment(self._launch(), number)

    def warm(self) -> None:
        """Start one environment ahead of the first invocation (what provisioned concurrency does)."""
        if self._runs_in_process() or self.pool.size:
            return
        environment, generation = self.pool.acquire(self.spec.timeout_seconds)
        self.pool.release(environment, generation)

    def stop(self) -> None:
        """Stop every environment (the stack stops)."""
        self.pool.reset()

    # -- invoking --

    def submit(
        self, event: dict[str, Any], *, request_id: str | None = None, wait: float | None = None
    ) -> Any:
        """`invoke` in a thread of its own: a Future of its result (a caller may stop waiting for it, as
        API Gateway does at its integration timeout, while the invocation runs on to its end)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(self.invoke(event, request_id=request_id, wait=wait))
            except BaseException as error:  # handed to whoever waits on the future
                future.set_exception(error)

        threading.Thread(target=run, name=f"invoke-{self.spec.logical_id}", daemon=True).start()
        return future

    def invoke(
        self, event: dict[str, Any], *, request_id: str | None = None, wait: float | None = None
    ) -> Any:
        """Run the handler in an execution environment; its error propagates (FunctionError from an
        environment), as does FunctionTimedOut past the function's Timeout.

        With every environment busy at the concurrency limit, the invocation waits up to `wait` seconds
        (default: the function's Timeout) for one to be free, then fails with NoEnvironmentFree.
        """
        request_id = request_id or str(uuid.uuid4())
        timeout = self.spec.timeout_seconds
        wait = timeout if wait is None else wait
        if self._runs_in_process():
            return self._invoke_in_process(event, request_id, timeout, wait)
        environment, generation = self.pool.acquire(wait)
        try:
            return environment.run(event, request_id, timeout)
        finally:
            self.pool.release(environment, generation)

    def _invoke_in_process(self, event: dict[str, Any], request_id: str, timeout: float, wait: float) -> Any:
        """An overriding callable, in a thread of this process; one invocation at a time. A timed-out
        handler cannot be killed in process and is left to finish on its own (its result dropped)."""
        handler = self.handler()
        if not self._in_process.acquire(timeout=wait):
            raise NoEnvironmentFree(
                f"{self.name}: the previous invocation still runs after {wait:.2f} seconds"
            )
        outcome: dict[str, Any] = {}
        try:
            context = self.new_context(request_id)
            principal = self.principal

            def run() -> None:
                try:
                    CURRENT_PRINCIPAL.set(principal)  # a new thread starts with an empty context
                    outcome["result"] = handler(event, context)
                except BaseException as error:  # handed to the caller below
                    outcome["error"] = error
                finally:
                    self._in_process.release()

            worker = threading.Thread(target=run, name=f"lambda-{self.spec.logical_id}", daemon=True)
            worker.start()
        except BaseException:
            self._in_process.release()
            raise
        worker.join(timeout)
        if worker.is_alive():
            raise FunctionTimedOut(f"{context.aws_request_id} Task timed out after {timeout:.2f} seconds")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")
