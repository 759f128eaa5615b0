"""The reconciler in process against moto (table, secret) and the Amazon Pay simulator on 127.0.0.1, which
posts no IPNs here: every IPN is lost, so only the reconciler's polls can finish a refund."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.adapters.mws.client import deadline_in
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.core.models import Refund
from amazon_pay_refunds.use_cases.reconciliation import ReconciliationReport
from amazon_pay_refunds.use_cases.submission import FaultHook, no_faults
from amazon_pay_sim import Simulator
from refunds_local.iam import IamGate, as_principal
from tests.support.refund_api_stack import (  # noqa: F401 - fixtures used by the tests here
    Api,
    aws,
    capture,
    iam_gate,
    served,
    simulator,
    store,
)


class Clock:
    """The reconciler's clock: the real time plus what a test skipped ahead."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(iam_gate: IamGate) -> Api:  # noqa: F811 - this folder's own api fixture
    return Api(principal=iam_gate.principal("RefundApiFunction"))


Reconcile = Callable[..., ReconciliationReport]


@pytest.fixture
def reconcile(iam_gate: IamGate, clock: Clock) -> Reconcile:  # noqa: F811
    """One reconciliation run, wired as the Lambda wires it, on the test's clock, with its role."""

    def run(limit: int = 25, fault_hook: FaultHook = no_faults) -> ReconciliationReport:
        with as_principal(iam_gate.principal("ReconcilerFunction")):
            return _run(limit, fault_hook)

    def _run(limit: int, fault_hook: FaultHook) -> ReconciliationReport:
        reconciler = lambda_services(now=clock).reconciler(fault_hook=fault_hook)
        return reconciler.run(deadline=deadline_in(30), limit=limit)

    return run


def calls(simulator: Simulator, action: str) -> list[dict[str, Any]]:  # noqa: F811
    return [call for call in simulator.calls() if call["action"] == action]


def refunds_at_amazon(simulator: Simulator, capture_id: str) -> list[dict[str, Any]]:  # noqa: F811
    refunds: list[dict[str, Any]] = simulator.capture_view(capture_id)["refunds"]
    return refunds


def get(store: RefundStore, refund_id: str) -> Refund:  # noqa: F811
    refund = store.get_refund(refund_id)
    assert refund is not None
    return refund
