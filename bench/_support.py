"""Helpers shared by the in-process benchmarks: quiet stdout, environment patching, API Gateway events,
a Lambda context, an IPN receiver, percentiles."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench._lambda_env import REPO

EVENT_TEMPLATE = REPO / "events" / "refund_api" / "post_refunds.json"


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """File descriptor 1 to /dev/null: the handlers' JSON logs and EMF metrics are still formatted and
    written (as in Lambda), just not onto the table. Progress goes to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextmanager
def environment(values: Mapping[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in [*values, *remove]}
    for name in remove:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class LambdaContext:
    """What Powertools and the handlers read from Lambda's context object."""

    function_name: str = "bench"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_seconds: float = 25.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_TEMPLATE_EVENT: dict[str, Any] | None = None


def api_event(method: str, resource: str, path: str, body: Any = None) -> dict[str, Any]:
    """An API Gateway REST proxy event shaped like events/refund_api/*.json."""
    global _TEMPLATE_EVENT
    if _TEMPLATE_EVENT is None:
        _TEMPLATE_EVENT = json.loads(EVENT_TEMPLATE.read_text())
    event: dict[str, Any] = json.loads(json.dumps(_TEMPLATE_EVENT))
    names = [part[1:-1] for part in resource.split("/") if part.startswith("{")]
    values = [p for r, p in zip(resource.split("/"), path.split("/"), strict=True) if r.startswith("{")]
    event.update(
        httpMethod=method,
        resource=resource,
        path=path,
        pathParameters=dict(zip(names, values, strict=True)) or None,
        body=None if body is None else json.dumps(body),
    )
    event["requestContext"].update(
        httpMethod=method, resourcePath=resource, path=f"/v1{path}", requestId=str(uuid.uuid4())
    )
    return event


def ipn_event(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The API Gateway REST proxy event of an SNS POST to /ipn."""
    plain = dict(headers)
    return {
        "resource": "/ipn",
        "path": "/ipn",
        "httpMethod": "POST",
        "headers": plain,
        "multiValueHeaders": {k: [v] for k, v in plain.items()},
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
        "requestContext": {"requestId": str(uuid.uuid4()), "stage": "v1", "resourcePath": "/ipn"},
    }


class ExternalClock:
    """Time spent inside AWS SDK calls (botocore, here answered by moto) and HTTP calls (requests: the
    simulator), so that a handler's own time can be told apart from its emulated dependencies'."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0
        self.thread = threading.get_ident()
        self._saved: list[tuple[Any, str, Any]] = []

    def _wrap(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != clock.thread:  # the simulator's own threads (IPN posts)
                return original(*args, **kwargs)
            clock._depth += 1
            begin = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock._depth -= 1
                if clock._depth == 0:
                    clock.seconds += time.perf_counter() - begin

        self._saved.append((owner, name, original))
        setattr(owner, name, timed)

    def __enter__(self) -> ExternalClock:
        from botocore.client import BaseClient
        from requests import Session

        self._wrap(BaseClient, "_make_api_call")
        self._wrap(Session, "send")  # adapter.send + reading the body
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()
