"""A minimal, deterministic interpreter of the Amazon States Language subset statemachine/retry.asl.json uses.

States: Task (`lambda:invoke` and `lambda:invoke.waitForTaskToken`, with Parameters, ResultSelector,
ResultPath, Retry with BackoffRate/MaxDelaySeconds/JitterStrategy FULL, Catch, TimeoutSecondsPath), Choice
(StringEquals, NumericEquals, NumericLessThan(Path), NumericGreaterThanOrEquals, BooleanEquals, IsPresent),
Wait (Seconds, SecondsPath), Pass (Result, ResultPath), Succeed, Fail.
JSONPath: `$`, `$.a.b`, `$$.Task.Token`.

Time is the simulation's virtual clock and jitter comes from the seeded generator, so an execution replays.
A Task's Lambda is called through `invoke(payload)`; an exception's class name is the error name Step
Functions would see (a process crash is `Lambda.Unknown`), and `States.TaskFailed`/`States.ALL` match any
error but `States.Timeout` (`States.ALL` matches that too).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Invoke = Callable[[dict[str, Any]], Any]
_MISSING = object()


class StatesError(Exception):
    """An error as the state machine sees it: its name and cause."""

    def __init__(self, name: str, cause: str = "") -> None:
        super().__init__(f"{name}: {cause}")
        self.name = name
        self.cause = cause


def read_path(path: str, data: Any, context: Mapping[str, Any]) -> Any:
    if path == "$":
        return data
    if path.startswith("$$."):
        value: Any = context
        parts = path[3:].split(".")
    elif path.startswith("$."):
        value = data
        parts = path[2:].split(".")
    else:
        raise ValueError(f"unsupported JSONPath {path!r}")
    for part in parts:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _require(path: str, data: Any, context: Mapping[str, Any]) -> Any:
    value = read_path(path, data, context)
    if value is _MISSING:
        raise StatesError("States.Runtime", f"the JSONPath {path} matched nothing")
    return value


def build(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    """Parameters / ResultSelector: keys ending in `.$` are paths, everything else is literal."""
    if isinstance(template, Mapping):
        built: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                built[key[:-2]] = _require(str(value), data, context)
            else:
                built[key] = build(value, data, context)
        return built
    if isinstance(template, list):
        return [build(v, data, context) for v in template]
    return template


def place(data: Any, result_path: str | None, result: Any) -> Any:
    """ResultPath: `$` replaces the input, `$.a.b` sets a field (creating objects), null discards."""
    if result_path is None:
        return data
    if result_path == "$":
        return result
    if not result_path.startswith("$."):
        raise ValueError(f"unsupported ResultPath {result_path!r}")
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    target = out
    parts = result_path[2:].split(".")
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            target[part] = nxt
        target = nxt
    target[parts[-1]] = result
    return out


def _error_matches(names: list[str], error: str) -> bool:
    if "States.ALL" in names:
        return True
    if error in names:
        return True
    return "States.TaskFailed" in names and error != "States.Timeout"


def _choice_matches(rule: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> bool:
    if "And" in rule:
        return all(_choice_matches(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(_choice_matches(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not _choice_matches(rule["Not"], data, context)
    value = read_path(str(rule["Variable"]), data, context)
    if "IsPresent" in rule:
        return (value is not _MISSING) is bool(rule["IsPresent"])
    for operator, expected in rule.items():
        if operator in ("Variable", "Next"):
            continue
        if operator.endswith("Path"):
            expected = read_path(str(expected), data, context)
            operator = operator[: -len("Path")]
        if value is _MISSING or expected is _MISSING:
            return False
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if operator == "StringEquals":
            return isinstance(value, str) and value == expected
        if operator == "BooleanEquals":
            return isinstance(value, bool) and value == expected
        if operator.startswith("Numeric") and not numeric:
            return False
        if operator == "NumericEquals":
            return bool(value == expected)
        if operator == "NumericLessThan":
            return bool(value < expected)
        if operator == "NumericLessThanEquals":
            return bool(value <= expected)
        if operator == "NumericGreaterThan":
            return bool(value > expected)
        if operator == "NumericGreaterThanEquals":
            return bool(value >= expected)
        raise ValueError(f"unsupported Choice operator {operator!r}")
    raise ValueError(f"Choice rule without a comparison: {rule}")


@dataclass
class Execution:
    """One execution. The owner calls `step()` whenever `runnable(now)`; each call runs one state (a Task
    state: one invocation of its Lambda, or the handling of its outcome)."""

    name: str
    definition: Mapping[str, Any]
    data: Any
    invoke: Invoke
    rng: random.Random
    token_prefix: str
    state: str = ""
    status: str = "RUNNING"  # RUNNING, SUCCEEDED, FAILED
    error: str | None = None
    wake_at: float | None = None
    waiting_token: str | None = None
    timeout_at: float | None = None
    callback: tuple[str, Any] | None = None
    retries: dict[int, int] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    _tokens: int = 0

    def __post_init__(self) -> None:
        self.state = str(self.definition["StartAt"])
        self.history.append(self.state)

    @property
    def finished(self) -> bool:
        return self.status != "RUNNING"

    def runnable(self, now: float) -> bool:
        if self.finished:
            return False
        if self.waiting_token is not None:
            return self.callback is not None or (self.timeout_at is not None and now >= self.timeout_at)
        return self.wake_at is None or now >= self.wake_at

    def next_wake(self) -> float | None:
        if self.finished:
            return None
        if self.waiting_token is not None:
            return None if self.callback is not None else self.timeout_at
        return self.wake_at

    # -- callbacks (SendTaskSuccess / SendTaskFailure) --

    def accept_callback(self, token: str, kind: str, payload: Any) -> bool:
        if self.waiting_token != token or self.callback is not None:
            return False
        self.callback = (kind, payload)
        return True

    # -- running --

    def step(self, now: float) -> None:
        spec: Mapping[str, Any] = self.definition["States"][self.state]
        kind = spec["Type"]
        if kind == "Wait":
            if self.wake_at is None:
                seconds = (
                    spec["Seconds"] if "Seconds" in spec else _require(spec["SecondsPath"], self.data, {})
                )
                self.wake_at = now + float(seconds)
                return
            self.wake_at = None
            self._goto(spec["Next"])
        elif kind == "Choice":
            for rule in spec.get("Choices", []):
                if _choice_matches(rule, self.data, {}):
                    self._goto(rule["Next"])
                    return
            if "Default" not in spec:
                self._fail("States.NoChoiceMatched", "no Choice rule matched")
                return
            self._goto(spec["Default"])
        elif kind == "Pass":
            result = spec.get("Result", self.data)
            self.data = place(self.data, spec.get("ResultPath", "$"), result)
            self._next_or_end(spec)
        elif kind == "Succeed":
            self.status = "SUCCEEDED"
        elif kind == "Fail":
            self._fail(str(spec.get("Error", "States.Fail")), str(spec.get("Cause", "")))
        elif kind == "Task":
            self._task(spec, now)
        else:
            raise ValueError(f"unsupported state type {kind!r}")

    def _task(self, spec: Mapping[str, Any], now: float) -> None:
        waits = str(spec["Resource"]).endswith(".waitForTaskToken")
        if self.waiting_token is not None:
            callback, self.callback = self.callback, None
            self.waiting_token = None
            self.timeout_at = None
            if callback is None:
                self._task_error(spec, StatesError("States.Timeout", "no callback in time"), now)
            elif callback[0] == "success":
                self._task_result(spec, json.loads(str(callback[1])))
            else:
                error, cause = callback[1]
                self._task_error(spec, StatesError(str(error), str(cause)), now)
            return
        self.wake_at = None
        context: dict[str, Any] = {}
        if waits:
            self._tokens += 1
            context = {"Task": {"Token": f"{self.token_prefix}-{self._tokens}"}}
        try:
            parameters = build(spec.get("Parameters", {}), self.data, context)
            payload = dict(parameters.get("Payload", parameters))
            result = self.invoke(payload)
        except StatesError as error:
            self._task_error(spec, error, now)
            return
        if waits:
            self.waiting_token = context["Task"]["Token"]
            timeout = spec.get("TimeoutSeconds")
            if "TimeoutSecondsPath" in spec:
                timeout = _require(spec["TimeoutSecondsPath"], self.data, {})
            self.timeout_at = None if timeout is None else now + float(timeout)
            return
        self._task_result(spec, {"Payload": result, "StatusCode": 200})

    def _task_result(self, spec: Mapping[str, Any], result: Any) -> None:
        try:
            if "ResultSelector" in spec:
                result = build(spec["ResultSelector"], result, {})
            self.data = place(self.data, spec.get("ResultPath", "$"), result)
        except StatesError as error:
            self._fail(error.name, error.cause)
            return
        self._next_or_end(spec)

    def _task_error(self, spec: Mapping[str, Any], error: StatesError, now: float) -> None:
        for index, retrier in enumerate(spec.get("Retry", [])):
            if not _error_matches(list(retrier["ErrorEquals"]), error.name):
                continue
            done = self.retries.get(index, 0)
            if done >= int(retrier.get("MaxAttempts", 3)):
                break  # this retrier is exhausted: on to Catch
            self.retries[index] = done + 1
            delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** done
            if "MaxDelaySeconds" in retrier:
                delay = min(delay, float(retrier["MaxDelaySeconds"]))
            if retrier.get("JitterStrategy") == "FULL":
                delay = self.rng.uniform(0, delay)
            self.wake_at = now + delay
            self.history.append(f"{self.state}!{error.name}(retry {done + 1})")
            return
        for catcher in spec.get("Catch", []):
            if _error_matches(list(catcher["ErrorEquals"]), error.name):
                self.history.append(f"{self.state}!{error.name}(caught)")
                self.data = place(
                    self.data, catcher.get("ResultPath", "$"), {"Error": error.name, "Cause": error.cause}
                )
                self._goto(catcher["Next"])
                return
        self._fail(error.name, error.cause)

    def _next_or_end(self, spec: Mapping[str, Any]) -> None:
        if spec.get("End"):
            self.status = "SUCCEEDED"
        else:
            self._goto(spec["Next"])

    def _goto(self, state: str) -> None:
        self.state = state
        self.retries = {}
        self.history.append(state)

    def _fail(self, error: str, cause: str) -> None:
        self.status = "FAILED"
        self.error = f"{error}: {cause}"
