"""The deployed RefundApi handler, its service crashing at a named point (the service's fault hook).

test_money_invariants.py puts one of these in place of the template's handler by name
(`override("tests.e2e.crashing_refund_api.after_reservation")`), so that the stack runs it as it runs the
real one: in the function's own execution environments, with its role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.core.models import Refund
from amazon_pay_refunds.use_cases.submission import FaultPoint
from functions.refund_api import app


class Crash(Exception):
    """The Lambda dies here (timeout, out of memory, a lost container)."""


def _crashing_at(where: FaultPoint) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def hook(point: FaultPoint, refund: Refund) -> None:
        if point == where:
            raise Crash(point)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        app.refund_service = lambda: lambda_services().refund_requests(fault_hook=hook)
        answer: dict[str, Any] = app.lambda_handler(event, context)
        return answer

    return handler


after_reservation = _crashing_at("after_reservation")
after_amazon_answer = _crashing_at("after_amazon_answer")
