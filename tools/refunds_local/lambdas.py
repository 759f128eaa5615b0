"""The template's functions, run in process as Lambda would run them: lazily imported, with a context.

Lambda runs one invocation at a time in an execution environment, and the handlers rely on it: they keep
per-invocation state at module or class level (Powertools' resolver stores the current event on its
class). So `invoke` runs one invocation of a function at a time; concurrent callers queue for it.

Each LocalStack cold-starts its handler modules: the first invocation imports `functions.<folder>.app`
afresh, after the stack's environment is in place (as Lambda imports a handler inside its configured
environment), without disturbing a copy some test imported earlier. An import that fails is retried on the
next invocation, so a handler folder that appears while the stack runs is picked up.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .iam import ACCOUNT_ID, CURRENT_PRINCIPAL, Principal
from .template import REPO, FunctionSpec

logger = logging.getLogger("refunds_local.lambdas")

Handler = Callable[[dict[str, Any], Any], Any]


class HandlerUnavailable(Exception):
    """The handler's module cannot be imported, or has no such function."""


class FunctionTimedOut(Exception):
    """The invocation ran past the function's Timeout (Lambda's "Task timed out")."""


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
    """One function of the template, invocable in process; its handler can be overridden (tests)."""

    def __init__(self, spec: FunctionSpec, *, stack_name: str, region: str) -> None:
        self.spec = spec
        self.name = f"{stack_name}-{spec.logical_id}"
        self.arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.name}"
        self._lock = threading.Lock()
        # Held from an invocation's start until its handler returns (even past a timeout), released by the
        # thread that ran it: one execution environment.
        self._environment = threading.Lock()
        self._handler: Handler | None = None
        self._override: Handler | str | None = None
        # The role session its AWS calls are signed with (iam.py); None: the process's own credentials.
        self.principal: Principal | None = None

    @property
    def reference(self) -> str:
        if isinstance(self._override, str):
            return self._override
        if self._override is not None:
            return getattr(self._override, "__qualname__", repr(self._override))
        return f"{self.spec.module}.{self.spec.handler}"

    def override(self, handler: Handler | str | None) -> None:
        """Run `handler` (a callable, or "module.function" imported lazily) instead; None: the template's."""
        with self._lock:
            self._override = handler
            self._handler = handler if handler is not None and not isinstance(handler, str) else None

    def handler(self) -> Handler:
        with self._lock:
            if self._handler is None:
                self._handler = resolve_handler(self.reference)
                logger.info("%s: loaded %s", self.spec.logical_id, self.reference)
            return self._handler

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

    def invoke(self, event: dict[str, Any], *, request_id: str | None = None) -> Any:
        """Run the handler with a fresh context; its exception propagates, as does a FunctionTimedOut.

        Invocations of this function run one at a time: a caller waits up to the function's Timeout for
        the one before it to end, then gets FunctionTimedOut. The handler runs in its own thread so that
        the Timeout applies; a timed-out handler cannot be killed in process and is left to finish on its
        own (its result is dropped, as Lambda's), keeping the environment busy until it does.
        """
        handler = self.handler()
        timeout = self.spec.timeout_seconds
        if not self._environment.acquire(timeout=timeout):
            raise FunctionTimedOut(
                f"{self.name}: the previous invocation still runs after {timeout:.2f} seconds"
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
                    self._environment.release()

            worker = threading.Thread(target=run, name=f"lambda-{self.spec.logical_id}", daemon=True)
            worker.start()
        except BaseException:
            self._environment.release()
            raise
        worker.join(timeout)
        if worker.is_alive():
            raise FunctionTimedOut(f"{context.aws_request_id} Task timed out after {timeout:.2f} seconds")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")
