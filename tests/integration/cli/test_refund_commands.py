"""`refunds status|list|resolve|reconcile` against moto's DynamoDB and Secrets Manager: what they print,
what they change, and their exit codes (0 done, 1 not found/refused, 2 usage)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.adapters.mws.endpoints import Endpoint
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.core import reconciliation
from amazon_pay_refunds.core.lifecycle import AttemptOutcome, apply_observation, request_refund
from amazon_pay_refunds.core.models import AttemptState, Refund
from amazon_pay_refunds.use_cases.submission import FaultPoint
from amazon_pay_sim import Simulator
from amazon_pay_sim.server import ServerHandle
from refunds_cli import target as target_module
from refunds_cli.main import main
from tests.support.refund_api_stack import SECRET_NAME, TABLE, Api, refund_body

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
Capture = Callable[..., str]
DEPLOYMENT = ["--table", TABLE]


def refunds(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()  # what the handlers printed while a test set up its refunds
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def crash_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    def hook(point: FaultPoint, refund: Refund) -> None:
        if point == "after_reservation":
            raise RuntimeError("the Lambda died")

    module = importlib.import_module("functions.refund_api.app")
    monkeypatch.setattr(module, "refund_service", lambda: lambda_services().refund_requests(fault_hook=hook))


def reject(store: RefundStore, refund_id: str) -> None:
    """Amazon declines the refund AmazonRejected: it waits for an operator (ManualActionRequired)."""
    outcome = AttemptOutcome(AttemptState.DECLINED, "test:decline", "AmazonRejected", None, f"{refund_id}_1")
    store.transition(refund_id, lambda r: apply_observation(r, outcome, at=datetime.now(UTC)))


@pytest.fixture
def pending(api: Api, capture: Capture) -> str:
    assert api.post_refund(refund_body(capture())).status == 202
    return "ord-1001-r1"


# --- status ------------------------------------------------------------------------------------------


def test_status_prints_the_refund_its_attempts_and_its_history(
    pending: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = refunds(capsys, "status", pending, *DEPLOYMENT)
    assert code == 0
    assert out.startswith("ord-1001-r1  Pending")
    assert "12.50 USD" in out
    assert "#1  ord-1001-r1_1  S01-" in out
    assert "Requested -> Pending  [amazon:Refund]" in out


def test_status_json_is_the_refund_resource_with_operator_fields(
    pending: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = refunds(capsys, "status", pending, *DEPLOYMENT, "--json")
    document = json.loads(out)
    assert code == 0
    assert (document["refund_id"], document["status"], document["amount"]) == (pending, "Pending", "12.50")
    assert document["late_observations"] == [] and document["reservation_pending"] is False


def test_status_of_an_unknown_refund_exits_1(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = refunds(capsys, "status", "never-requested", *DEPLOYMENT)
    assert (code, out) == (1, "")
    assert "no refund never-requested" in err


def test_a_table_that_does_not_exist_exits_1(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = refunds(capsys, "status", "r1", "--table", "no-such-table")
    assert code == 1 and "ResourceNotFound" in err


def test_without_a_deployment_the_command_is_a_usage_error(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = refunds(capsys, "status", "r1")
    assert code == 2 and "--stack-name, --table or --local" in err


def test_two_deployments_at_once_are_a_usage_error(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = refunds(capsys, "status", "r1", "--table", TABLE, "--stack-name", "s")
    assert code == 2


@pytest.mark.parametrize(
    "arguments",
    [
        ["--table", TABLE, "--json", "status", "ord-1001-r1"],
        ["--json", "status", "ord-1001-r1", "--table", TABLE],
        ["--table", TABLE, "status", "ord-1001-r1", "--json"],
        ["status", "ord-1001-r1", "--table", TABLE, "--json"],
    ],
)
def test_the_global_options_go_before_or_after_the_command(
    pending: str, capsys: pytest.CaptureFixture[str], arguments: list[str]
) -> None:
    code, out, err = refunds(capsys, *arguments)
    assert code == 0, err
    assert json.loads(out)["refund_id"] == pending


def test_local_before_the_command_names_the_local_stack(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # no state file here: no local stack is running
    code, _, err = refunds(capsys, "--local", "list")
    assert code == 1, err
    assert "unrecognized arguments" not in err and "refunds-local" in err


def test_an_option_given_twice_keeps_the_one_after_the_command(
    pending: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = refunds(capsys, "--table", "no-such-table", "status", pending, "--table", TABLE)
    assert code == 0, err


# --- list --------------------------------------------------------------------------------------------


def test_list_shows_only_the_status_asked_for(
    api: Api, capture: Capture, store: RefundStore, capsys: pytest.CaptureFixture[str]
) -> None:
    capture_id = capture()
    for refund_id in ("ord-1", "ord-2"):
        api.post_refund(refund_body(capture_id, refund_id, "10.00"))
    reject(store, "ord-2")
    code, out, _ = refunds(capsys, "list", "--status", "ManualActionRequired", *DEPLOYMENT)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["REFUND_ID", "STATUS", "AMOUNT", "AGE", "IDLE", "REASON", "CAPTURE"]
    assert [line.split()[:2] for line in lines[1:]] == [["ord-2", "ManualActionRequired"]]
    assert "AmazonRejected" in lines[1]


def test_list_respects_its_limit_oldest_first(
    api: Api, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    capture_id = capture()
    for refund_id in ("ord-1", "ord-2", "ord-3"):
        api.post_refund(refund_body(capture_id, refund_id, "10.00"))
    code, out, _ = refunds(capsys, "list", "--limit", "2", *DEPLOYMENT, "--json")
    assert code == 0
    assert [r["refund_id"] for r in json.loads(out)] == ["ord-1", "ord-2"]


def test_list_of_nothing_open_says_so(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert refunds(capsys, "list", *DEPLOYMENT)[:2] == (0, "no open refunds\n")


@pytest.mark.parametrize("arguments", [["--status", "Completed"], ["--limit", "0"], ["--limit", "x"]])
def test_list_refuses_what_it_cannot_list(aws: None, arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["list", *arguments, *DEPLOYMENT])
    assert exit_.value.code == 2


# --- resolve -----------------------------------------------------------------------------------------


def test_resolve_marks_a_manual_action_refund_resolved_out_of_band(
    pending: str, store: RefundStore, capsys: pytest.CaptureFixture[str]
) -> None:
    reject(store, pending)
    code, out, _ = refunds(
        capsys, "resolve", pending, "--method", "gift_card", "--note", "GC-123 sent", *DEPLOYMENT, "--json"
    )
    assert code == 0 and json.loads(out)["status"] == "ResolvedOutOfBand"
    resolved = store.get_refund(pending)
    assert resolved is not None
    assert resolved.history[-1].cause == "operator:resolve"
    assert resolved.history[-1].detail == {"method": "gift_card", "note": "GC-123 sent"}


def test_resolve_of_a_pending_refund_is_refused_with_exit_1(
    pending: str, store: RefundStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = refunds(capsys, "resolve", pending, "--method", "other", *DEPLOYMENT)
    assert code == 1 and "refused" in err and "Pending" in err
    assert store.get_refund(pending).status.value == "Pending"  # type: ignore[union-attr]


def test_resolve_of_an_unknown_refund_exits_1(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert refunds(capsys, "resolve", "nope", "--method", "other", *DEPLOYMENT)[0] == 1


@pytest.mark.parametrize("arguments", [["--method", "cash"], [], ["--method", "other", "--note", " "]])
def test_resolve_refuses_a_method_it_does_not_know(aws: None, arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["resolve", "r1", *arguments, *DEPLOYMENT])
    assert exit_.value.code == 2


# --- reconcile ---------------------------------------------------------------------------------------


@pytest.fixture
def amazon_pay_is_the_simulator(served: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--amazon-pay-region us --amazon-pay-sandbox true` reaches the simulator instead of Amazon."""
    url = str(served.mws_url)
    scheme, rest = url.split("://", 1)
    host, path = rest.split("/", 1)
    monkeypatch.setattr(
        target_module, "endpoint_for", lambda region, sandbox: Endpoint(scheme, host, f"/{path}")
    )
    monkeypatch.setattr(reconciliation, "REQUESTED_GRACE", timedelta(0))  # no waiting two minutes in a test


AMAZON = ["--secret", SECRET_NAME, "--amazon-pay-region", "us", "--amazon-pay-sandbox", "true"]


def test_reconcile_submits_a_refund_left_requested_and_says_so(
    api: Api,
    capture: Capture,
    simulator: Simulator,
    amazon_pay_is_the_simulator: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capture_id = capture()
    crash_the_api(monkeypatch)
    api.post_refund(refund_body(capture_id))
    code, out, _ = refunds(capsys, "reconcile", *DEPLOYMENT, *AMAZON)
    assert code == 0
    assert out.splitlines()[0].startswith("submit  ord-1001-r1  Requested -> Pending: Amazon has S01-")
    assert "submitted 1, polled 0, advanced 1, failed 0" in out
    assert len(simulator.capture_view(capture_id)["refunds"]) == 1


def test_reconcile_json_reports_the_run(
    aws: None, amazon_pay_is_the_simulator: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = refunds(capsys, "reconcile", "--limit", "5", *DEPLOYMENT, *AMAZON, "--json")
    report: dict[str, Any] = json.loads(out)
    assert code == 0
    assert (report["actions"], report["scanned"], report["oldest_open_refund_age_seconds"]) == ([], 0, 0)


def test_reconcile_with_a_table_but_no_amazon_pay_settings_is_a_usage_error(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = refunds(capsys, "reconcile", *DEPLOYMENT, "--secret", SECRET_NAME)
    assert code == 2 and "--amazon-pay-region" in err


# --- a deployed stack ----------------------------------------------------------------------------------

# moto's CloudFormation creates no Secrets Manager secret; reading needs only the table.
STACK_TEMPLATE = {
    "Resources": {
        "RefundsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            },
        },
    }
}


def test_a_stack_name_finds_the_stacks_table(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    cloudformation.create_stack(StackName="refunds-prod", TemplateBody=json.dumps(STACK_TEMPLATE))
    table = cloudformation.describe_stack_resource(
        StackName="refunds-prod", LogicalResourceId="RefundsTable"
    )["StackResourceDetail"]["PhysicalResourceId"]
    RefundStore(table, boto3.client("dynamodb", region_name="us-east-1")).create_refund_without_reservation(
        _refund("in-the-stack")
    )
    code, out, _ = refunds(
        capsys, "status", "in-the-stack", "--stack-name", "refunds-prod", "--region", "us-east-1"
    )
    assert code == 0 and out.startswith("in-the-stack  Requested")
    assert "reservation pending" in out


def test_a_stack_that_does_not_exist_exits_1(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = refunds(capsys, "list", "--stack-name", "no-such-stack")
    assert code == 1 and "no-such-stack" in err


def _refund(refund_id: str) -> Refund:
    return request_refund(
        refund_id=refund_id,
        seller_id="A1EXAMPLE",
        amazon_capture_id="S01-1234567-1234567-C000001",
        amount=Decimal("5.00"),
        currency_code="USD",
        seller_refund_note=None,
        soft_descriptor=None,
        metadata={},
        request_fingerprint="f" * 32,
        at=datetime.now(UTC),
    ).refund
