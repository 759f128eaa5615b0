"""What the refunds commands print, and the one place their errors become messages and exit codes.

Human-readable text by default, one JSON document with `--json`; errors go to stderr as `refunds: ...`.
Exit codes: 0 done, 1 not found / refused / failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from amazon_pay_refunds.core.models import Refund, format_timestamp
from amazon_pay_refunds.use_cases.errors import InvalidRefundState, RefundNotFound, ServiceBusy

from .target import AWS_ERRORS, EXIT_REFUSED, EXIT_USAGE, TargetNotFound, UsageError

Handler = Callable[[argparse.Namespace], int]


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """`document` as JSON with --json, else `text`."""
    if getattr(args, "json", False):
        print(json.dumps(document, indent=2, sort_keys=False, default=str))
    else:
        print(text)


def fail(message: str, code: int = EXIT_REFUSED) -> int:
    print(f"refunds: {message}", file=sys.stderr)
    return code


def guarded(handler: Handler) -> Handler:
    """Map what a command can run into to a message and an exit code."""

    @wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except UsageError as error:
            return fail(str(error), EXIT_USAGE)
        except TargetNotFound as error:
            return fail(str(error))
        except RefundNotFound as error:
            return fail(error.message)
        except InvalidRefundState as error:
            refund = error.refund
            return fail(f"refused: refund {refund.refund_id} is {refund.status.value}; {error.message}")
        except ServiceBusy:
            return fail("the refunds table is busy; try again")
        except AWS_ERRORS as error:
            return fail(f"AWS: {error}")

    return run


def age(moment: datetime, now: datetime | None = None) -> str:
    """`3 d 4 h`, `2 h 05 min`, `7 min`, `12 s`."""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days} d {hours % 24} h"
    if hours:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{minutes} min"


def refund_document(refund: Refund) -> dict[str, Any]:
    """The API's refund resource, plus what only operators see."""
    document = refund.to_resource()
    document["reservation_pending"] = refund.reservation_pending
    document["late_observations"] = [
        {
            "at": format_timestamp(o.at),
            "cause": o.cause,
            "attempt": o.attempt,
            "state": o.state.value,
            "reason_code": o.reason_code,
            "amazon_refund_id": o.amazon_refund_id,
        }
        for o in refund.late_observations
    ]
    return document
