"""Tiny Lambda handlers the local-stack tests put in place of the real ones."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Recorder:
    """Answers `status` with `body`, and remembers every (event, context) it was called with."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append((event, context))
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json", **self.headers},
            "body": json.dumps(self.body if self.body is not None else {"ok": True}),
        }


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("the handler blew up on purpose")


def malformed(event: dict[str, Any], context: Any) -> Any:
    return "not a proxy response"


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(1.5)
    return {"statusCode": 200, "body": "{}"}


@dataclass
class StreamRecorder:
    """An EventPublisher stand-in: records each batch; `fail` picks sequence numbers to report failed."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    fail: Any = None  # callable(batch, call_index) -> list of sequence numbers to report, or raise
    raise_on: Any = None  # callable(batch, call_index) -> bool

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        batch = list(event["Records"])
        index = len(self.batches)
        self.batches.append(batch)
        if self.raise_on is not None and self.raise_on(batch, index):
            raise RuntimeError("EventBridge is down (on purpose)")
        failed = self.fail(batch, index) if self.fail is not None else []
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [record for batch in self.batches for record in batch]
