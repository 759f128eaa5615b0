"""Handlers the execution-environment tests run by name, so that the stack runs them in processes of their
own (as it runs the template's handlers), not in the test's process."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

# Module state, as a handler's warm container keeps it.
INVOCATIONS = {"count": 0}


def identify(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Who ran this invocation, where, and when (monotonic: one clock for every process of the machine)."""
    started = time.monotonic()
    INVOCATIONS["count"] += 1
    print(json.dumps({"marker": event.get("marker"), "request_id": context.aws_request_id}))
    print(f"to stderr {event.get('marker')}", file=sys.stderr)
    time.sleep(float(event.get("sleep", 0)))
    return {
        "pid": os.getpid(),
        "tmp": tempfile.gettempdir(),
        "invocations": INVOCATIONS["count"],
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID"),
        "started": started,
        "ended": time.monotonic(),
    }


def slow_api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A proxy integration's handler that answers after `?seconds=` (default 2)."""
    seconds = float((event.get("queryStringParameters") or {}).get("seconds", "2"))
    time.sleep(seconds)
    return {"statusCode": 200, "body": json.dumps({"slept": seconds})}


def raises(event: dict[str, Any], context: Any) -> None:
    raise RuntimeError("the handler blew up in its environment")
