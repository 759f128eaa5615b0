"""IAM as deployed: each function runs with the role SAM generates for it (refunds_local/iam.py).

A call a role does not allow fails the test that made it (tests/conftest.py names the function, the action
and the resource); a grant no test uses is reported at the end of the session, and fails `make test`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from amazon_pay_refunds import runtime
from amazon_pay_refunds.adapters.mws.client import deadline_in
from amazon_pay_refunds.composition import lambda_services
from refunds_local.clients import SimulatorControl, Storefront
from refunds_local.stack import EmbeddedStack
from refunds_local.template import TEMPLATE_PATH

from .conftest import refund_body

REPO = Path(__file__).resolve().parents[2]
NAMED_TEST = (
    "tests/e2e/test_api_answers.py::test_get_capture_is_200_with_the_ledger_and_404_before_any_refund"
)

Capture = Callable[..., str]


def without_permission(template: str, function: str, action: str) -> str:
    """template.yaml's text with `action` taken out of `function`'s policies (exactly one line)."""
    start = template.index(f"\n  {function}:\n")
    following = re.search(r"\n  [A-Za-z0-9]+:\n", template[start + 1 :])
    end = start + 1 + following.start() if following else len(template)
    section, removed = re.subn(rf"\n\s+- {re.escape(action)}[ \t]*(?=\n)", "", template[start:end])
    assert removed == 1, f"{function} grants {action} {removed} times, expected once"
    return template[:start] + section + template[end:]


def test_without_batch_get_item_the_capture_ledger_test_fails_naming_the_refused_call(tmp_path: Path) -> None:
    """The check can fail: the named end-to-end test, on a copy of template.yaml whose RefundApiFunction
    lacks dynamodb:BatchGetItem, fails with AccessDenied naming the function and the action."""
    copy = tmp_path / "template.yaml"
    copy.write_text(
        without_permission(
            TEMPLATE_PATH.read_text(encoding="utf-8"), "RefundApiFunction", "dynamodb:BatchGetItem"
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", NAMED_TEST, "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=REPO,
        env={**os.environ, "REFUNDS_E2E_TEMPLATE": str(copy)},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert re.search(
        r"AccessDenied: RefundApiFunction: dynamodb:BatchGetItem on arn:aws:dynamodb:\S+:table/\S+ REFUSED",
        output,
    ), output[-3000:]
    assert "1 failed" in output or "1 error" in output, output[-3000:]


def test_a_refused_call_answers_access_denied_to_the_function(stack: EmbeddedStack) -> None:
    """What the code sees: AWS's AccessDeniedException, naming the role session, action and resource."""
    caught: list[str] = []

    def scans(event: dict[str, Any], context: Any) -> None:
        try:
            runtime.store().client.scan(TableName=stack.table_name, Limit=1)
        except Exception as error:  # the ClientError, as in AWS
            caught.append(str(error))

    function = stack.function("RetryStarterFunction")
    function.override(scans)
    try:
        function.invoke({})
    finally:
        function.override(None)
    [message] = caught
    assert "AccessDeniedException" in message
    assert "assumed-role/refunds-local-RetryStarterFunctionRole/refunds-local-RetryStarterFunction" in message
    assert (
        f"dynamodb:Scan on resource: arn:aws:dynamodb:us-east-1:123456789012:table/{stack.table_name}"
        in message
    )
    [refused] = stack.iam_refusals()
    assert (refused.principal, refused.action, refused.allowed) == (
        "RetryStarterFunction",
        "dynamodb:Scan",
        False,
    )


def test_the_reconciler_finishes_refunds_with_its_own_role(
    stack: EmbeddedStack, storefront: Storefront, simulator: SimulatorControl, capture: Capture
) -> None:
    """ReconcilerFunction's AWS calls, as its handler makes them, ten minutes later (its clock shifted):
    a Requested refund (Amazon was unreachable) is submitted, a Pending one whose IPN was lost is polled."""
    unreachable = refund_body(capture("40.00"), "10.00")
    simulator.fault("Refund", "503", count=4)
    assert storefront.post_refund(unreachable).body["status"] == "Requested"
    lost = refund_body(capture("40.00"), "15.00")
    simulator.ipn_fault("drop")
    assert storefront.post_refund(lost).body["status"] == "Pending"
    stack.simulator.wait_for_ipn_idle(10)

    def reconciles_later(event: dict[str, Any], context: Any) -> dict[str, Any]:
        reconciler = lambda_services(now=lambda: datetime.now(UTC) + timedelta(minutes=10)).reconciler()
        report: dict[str, Any] = reconciler.run(deadline=deadline_in(20), limit=25).to_dict()
        return report

    function = stack.function("ReconcilerFunction")
    function.override(reconciles_later)
    try:
        report = function.invoke({})
    finally:
        function.override(None)
    assert report["submitted"] >= 1, report
    assert report["polled"] >= 1, report
    assert storefront.get_refund(unreachable["refund_id"]).body["status"] == "Pending"
