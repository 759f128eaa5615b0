"""The Reconciler Lambda handler: one run per scheduled event, and its metrics as CloudWatch EMF."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.core.lifecycle import AttemptOutcome, apply_observation
from amazon_pay_refunds.core.models import AttemptState
from amazon_pay_refunds.use_cases.reconciliation import Reconciler
from amazon_pay_sim import Simulator
from refunds_local.iam import IamGate, as_principal
from tests.support.refund_api_stack import Api, LambdaContext, refund_body

from .conftest import Clock

REPO = Path(__file__).resolve().parents[3]
SCHEDULED_EVENT = json.loads((REPO / "events" / "reconciler" / "scheduled.json").read_text())
Capture = Callable[..., str]


@pytest.fixture
def handler(
    iam_gate: IamGate, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, Any]]:
    module = importlib.import_module("functions.reconciler.app")

    def wired() -> Reconciler:
        return lambda_services(now=clock).reconciler()

    monkeypatch.setattr(module, "reconciler", wired)

    def invoke() -> dict[str, Any]:
        with as_principal(iam_gate.principal("ReconcilerFunction")):
            result: dict[str, Any] = module.lambda_handler(
                SCHEDULED_EVENT, LambdaContext(60.0, function_name="ReconcilerFunction")
            )
        return result

    return invoke


def emitted_metrics(output: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every EMF metric printed: (name, its dimensions) → value."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "AmazonPayRefunds"
            [dimension_names] = directive["Dimensions"]
            dimensions = tuple(sorted((name, document[name]) for name in dimension_names))
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                found[(metric["Name"], dimensions)] = value[0] if isinstance(value, list) else value
    return found


SERVICE = (("service", "amazon-pay-refunds"),)


def test_the_handler_publishes_the_open_refund_metrics_and_the_work_done(
    api: Api,
    capture: Capture,
    simulator: Simulator,
    store: RefundStore,
    clock: Clock,
    handler: Callable[..., dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    capture_id = capture("100.00")
    api.post_refund(refund_body(capture_id, "ord-1", "10.00"))
    simulator.settle(everything=True)  # Completed at Amazon; its IPN is lost
    api.post_refund(refund_body(capture_id, "ord-2", "10.00"))  # still Pending at Amazon
    api.post_refund(refund_body(capture_id, "ord-3", "10.00"))
    rejected = AttemptOutcome(
        AttemptState.DECLINED, "test:setup", "AmazonRejected", refund_reference_id="ord-3_1"
    )
    store.transition("ord-3", lambda r: apply_observation(r, rejected, at=datetime.now(UTC)))
    oldest_created = store.get_refund("ord-1").created_at  # type: ignore[union-attr]
    clock.advance(minutes=2)
    capsys.readouterr()

    summary = handler()

    metrics = emitted_metrics(capsys.readouterr().out)
    expected_age = (clock() - oldest_created).total_seconds()
    assert metrics[("OldestOpenRefundAgeSeconds", SERVICE)] == pytest.approx(expected_age, abs=5)
    assert metrics[("ManualActionRequiredRefunds", SERVICE)] == 1
    assert metrics[("RefundsPolled", SERVICE)] == 2
    assert metrics[("RefundsAdvanced", SERVICE)] == 1
    assert metrics[("RefundsSubmitted", SERVICE)] == 0
    assert metrics[("ReconcileFailures", SERVICE)] == 0
    open_by_status = {
        dict(dims)["status"]: value for (name, dims), value in metrics.items() if name == "OpenRefunds"
    }
    # After the run: ord-1 Completed by its poll, ord-2 still Pending, ord-3 waiting for an operator.
    assert open_by_status == {"Requested": 0, "Pending": 1, "RetryScheduled": 0, "ManualActionRequired": 1}
    assert summary["polled"] == 2 and summary["manual_action_required"] == 1


def test_the_handler_reports_nothing_open_as_zero_age(
    handler: Callable[..., dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    handler()
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics[("OldestOpenRefundAgeSeconds", SERVICE)] == 0
    assert metrics[("ManualActionRequiredRefunds", SERVICE)] == 0
