"""Operability in template.yaml: the dashboard shows metrics the code really emits, every alarm pages the
operators' topic and has a runbook entry in docs/OPERATIONS.md, tracing is on everywhere, logs carry the
refund id."""

from __future__ import annotations

import argparse
import ast
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from amazon_pay_refunds import observability
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from tests.support.template import REPO
from tests.support.template import resources_of_type as _resources_of_type
from tests.support.template import template_functions as _functions

SOURCES = [
    *sorted((REPO / "functions").glob("*/app.py")),
    *sorted((REPO / "layers" / "shared").rglob("*.py")),
]
OPERATIONS = REPO / "docs" / "OPERATIONS.md"
REGION = "eu-west-1"
STACK = "refunds-prod"
ALARM_ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
PLACEHOLDER = re.compile(r"\$\{([^}!]+)\}")
SEARCH = re.compile(
    r"""SEARCH\('\{([^}]*)\}\s+MetricName="(\w+)"((?:\s+\w+="[^"]*")*)',\s*'(\w+)',\s*(\d+)\)"""
)


# --- what the code emits, read from the source ----------------------------------------------------------


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _emitted_in(tree: ast.AST) -> Iterator[tuple[str, frozenset[str]]]:
    """(metric, dimension names) of each `add_metric(name=...)` (the function's Metrics: service only) and
    each `with single_metric(name=...)` (service, and the `add_dimension(name=...)` in its block)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and _callee(call) == "single_metric":
                    name = _literal(_keyword(call, "name"))
                    assert name, (
                        f"line {call.lineno}: single_metric with a computed name hides it from the checks"
                    )
                    dimensions = {
                        _literal(_keyword(inner, "name"))
                        for inner in ast.walk(ast.Module(body=node.body, type_ignores=[]))
                        if isinstance(inner, ast.Call) and _callee(inner) == "add_dimension"
                    }
                    assert None not in dimensions, f"line {call.lineno}: a dimension with a computed name"
                    yield name, frozenset({"service", *(d for d in dimensions if d is not None)})
        elif isinstance(node, ast.Call) and _callee(node) == "add_metric":
            name = _literal(_keyword(node, "name"))
            assert name, f"line {node.lineno}: add_metric with a computed name hides it from the checks"
            yield name, frozenset({"service"})


@pytest.fixture(scope="module")
def emitted() -> dict[str, set[frozenset[str]]]:
    """Metric name → the dimension sets it is emitted with, over every handler and the shared library."""
    found: dict[str, set[frozenset[str]]] = {}
    for path in SOURCES:
        for name, dimensions in _emitted_in(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            found.setdefault(name, set()).add(dimensions)
    return found


def test_the_source_scan_finds_the_metrics_the_handlers_are_known_to_emit(
    emitted: dict[str, set[frozenset[str]]],
) -> None:
    assert emitted["OldestOpenRefundAgeSeconds"] == {frozenset({"service"})}
    assert emitted["OpenRefunds"] == {frozenset({"service", "status"})}
    assert emitted["IpnRejected"] == {frozenset({"service"}), frozenset({"service", "reason"})}
    assert emitted["AmazonErrors"] == {frozenset({"service", "operation", "code"})}


def _emf(text: str) -> dict[str, set[frozenset[str]]]:
    found: dict[str, set[frozenset[str]]] = {}
    for line in text.splitlines():
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "AmazonPayRefunds"
            for metric in directive["Metrics"]:
                for dimensions in directive["Dimensions"]:
                    found.setdefault(metric["Name"], set()).add(frozenset(dimensions))
    return found


BY_CODE = {"AmazonErrors": {frozenset({"service", "operation", "code"})}}
TRANSIENT = {"AmazonTransientErrors": {frozenset({"service"})}}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AmazonPayError("ServiceUnavailable", "down", http_status=503), {**BY_CODE, **TRANSIENT}),
        (AmazonPayError("RequestTimeout", "no answer"), {**BY_CODE, **TRANSIENT}),
        (AmazonPayError("InvalidCaptureStatus", "closed", http_status=400), BY_CODE),
    ],
)  # fmt: skip
def test_amazon_errors_are_counted_by_code_and_transient_ones_also_in_total(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: AmazonPayError,
    expected: dict[str, set[frozenset[str]]],
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AmazonPayRefunds")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "amazon-pay-refunds")
    capsys.readouterr()
    observability.count_amazon_error("Refund", error)
    out = capsys.readouterr().out
    assert _emf(out) == expected
    assert f'"code":"{error.code}"' in out and '"operation":"Refund"' in out


# --- the dashboard -------------------------------------------------------------------------------------


def _resolve(text: str, template: dict[str, Any]) -> str:
    """A !Sub string as CloudFormation renders it: pseudo parameters, parameter defaults, names and ARNs."""
    resources, parameters = template["Resources"], template["Parameters"]
    generated = {
        "RetryStarterFunctionProcessingFailureDeclinedQueue"
    }  # SAM's, for the rule's DeadLetterConfig

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "AWS::Region":
            return REGION
        if name == "AWS::StackName":
            return STACK
        if name in parameters:
            return str(parameters[name]["Default"])
        resource, _, attribute = name.partition(".")
        assert resource in resources or resource in generated, f"${{{name}}} names nothing in the stack"
        return f"<{resource}{'.' + attribute if attribute else ''}>"

    return PLACEHOLDER.sub(value, text)


@pytest.fixture(scope="module")
def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    [resource] = _resources_of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = resource["Properties"]["DashboardBody"]
    assert set(body) == {"Fn::Sub"} and isinstance(body["Fn::Sub"], str), "DashboardBody is one !Sub string"
    loaded: dict[str, Any] = json.loads(_resolve(body["Fn::Sub"], template))
    return loaded


def _metric_widgets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [w["properties"] for w in dashboard["widgets"] if w["type"] == "metric"]


def _metrics(dashboard: dict[str, Any]) -> list[tuple[str, str, str, dict[str, str], dict[str, Any]]]:
    """(widget title, namespace, metric, dimensions, options) of every plain metric line."""
    lines = []
    for widget in _metric_widgets(dashboard):
        for line in widget["metrics"]:
            if isinstance(line, list):
                options = line[-1] if isinstance(line[-1], dict) else {}
                names = [x for x in line if isinstance(x, str)]
                namespace, metric, *pairs = names
                assert len(pairs) % 2 == 0, (widget["title"], line)
                lines.append(
                    (
                        widget["title"],
                        namespace,
                        metric,
                        dict(zip(pairs[::2], pairs[1::2], strict=True)),
                        options,
                    )
                )
    return lines


def _searches(dashboard: dict[str, Any]) -> list[tuple[str, str, frozenset[str], str, dict[str, str], str]]:
    """(widget title, namespace, dimension schema, metric, filters, statistic) of every SEARCH expression."""
    found = []
    for widget in _metric_widgets(dashboard):
        for line in widget["metrics"]:
            if isinstance(line, dict) and "expression" in line:
                match = SEARCH.fullmatch(line["expression"])
                assert match, f"{widget['title']}: unreadable expression {line['expression']}"
                namespace, *schema = match.group(1).split(",")
                filters = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3)))
                found.append(
                    (widget["title"], namespace, frozenset(schema), match.group(2), filters, match.group(4))
                )
    return found


def _powertools(template: dict[str, Any]) -> tuple[str, str]:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    return variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]


def test_the_dashboard_is_a_grid_of_known_widget_types_in_the_stacks_region(
    dashboard: dict[str, Any],
) -> None:
    for widget in dashboard["widgets"]:
        assert widget["type"] in {"metric", "text", "alarm"}
        assert widget["x"] + widget["width"] <= 24
    for widget in _metric_widgets(dashboard):
        assert widget["region"] == REGION, widget["title"]


def test_every_custom_metric_on_the_dashboard_is_emitted_by_the_code_with_those_dimensions(
    template: dict[str, Any],
    dashboard: dict[str, Any],
    emitted: dict[str, set[frozenset[str]]],
) -> None:
    namespace, service = _powertools(template)
    custom = [m for m in _metrics(dashboard) if not m[1].startswith("AWS/")]
    assert custom
    for title, metric_namespace, metric, dimensions, _ in custom:
        assert metric_namespace == namespace, title
        assert metric in emitted, f"{title}: {metric} is emitted nowhere in the code"
        assert frozenset(dimensions) in emitted[metric], f"{title}: {metric} is not emitted with {dimensions}"
        assert dimensions["service"] == service, title


def test_every_search_on_the_dashboard_matches_a_metric_the_code_emits(
    template: dict[str, Any],
    dashboard: dict[str, Any],
    emitted: dict[str, set[frozenset[str]]],
) -> None:
    namespace, service = _powertools(template)
    searches = _searches(dashboard)
    assert searches
    for title, search_namespace, schema, metric, filters, _ in searches:
        assert search_namespace == namespace, title
        assert metric in emitted, f"{title}: {metric} is emitted nowhere in the code"
        assert schema in emitted[metric], (
            f"{title}: {metric} is not emitted with the dimensions {set(schema)}"
        )
        assert filters == {"service": service}, title


@pytest.mark.parametrize(
    ("metric", "dimensions"),
    [("OpenRefunds", {"service", "status"}), ("ManualActionRequiredRefunds", {"service"}),
     ("OldestOpenRefundAgeSeconds", {"service"}), ("IpnRejected", {"service", "reason"}),
     ("AmazonErrors", {"service", "operation", "code"}), ("RefundsRejected", {"service", "code"})],
)  # fmt: skip
def test_the_dashboard_shows_refunds_by_status_age_ipn_rejections_and_amazon_errors(
    dashboard: dict[str, Any], metric: str, dimensions: set[str]
) -> None:
    shown = {(m[2], frozenset(m[3])) for m in _metrics(dashboard)}
    shown |= {(s[3], s[2]) for s in _searches(dashboard)}
    assert (metric, frozenset(dimensions)) in shown


def test_the_oldest_refund_widget_marks_the_alarm_threshold(
    template: dict[str, Any],
    dashboard: dict[str, Any],
) -> None:
    [widget] = [
        w
        for w in _metric_widgets(dashboard)
        if any(isinstance(m, list) and m[1] == "OldestOpenRefundAgeSeconds" for m in w["metrics"])
    ]
    [line] = widget["annotations"]["horizontal"]
    assert line["value"] == template["Parameters"]["OpenRefundAgeAlarmSeconds"]["Default"]


def _aws(dashboard: dict[str, Any], namespace: str) -> list[tuple[str, dict[str, str], str]]:
    return [(m[2], m[3], m[4].get("stat", "")) for m in _metrics(dashboard) if m[1] == namespace]


def test_the_dashboard_shows_api_latency_percentiles_of_this_stacks_stage(
    template: dict[str, Any],
    translated: dict[str, Any],
    dashboard: dict[str, Any],
) -> None:
    # A REST API's ApiName dimension is its name: SAM names it after the OpenAPI title, the stack's name.
    assert translated["Resources"]["RefundsApi"]["Properties"]["Body"]["info"]["title"] == {
        "Ref": "AWS::StackName"
    }
    stage = template["Resources"]["RefundsApi"]["Properties"]["StageName"]
    shown = _aws(dashboard, "AWS/ApiGateway")
    for _, dimensions, _ in shown:
        assert dimensions == {"ApiName": STACK, "Stage": stage}
    for metric in ("Latency", "IntegrationLatency"):
        assert {stat for name, _, stat in shown if name == metric} >= {"p50", "p99"}, metric
    assert {"5XXError", "4XXError", "Count"} <= {name for name, _, _ in shown}


def test_the_dashboard_shows_duration_p99_errors_and_throttles_of_every_function(
    template: dict[str, Any],
    dashboard: dict[str, Any],
) -> None:
    functions = {f"<{name}>" for name in _resources_of_type(template, "AWS::Serverless::Function")}
    shown = _aws(dashboard, "AWS/Lambda")
    for metric, stat in (("Duration", "p99"), ("Errors", "Sum"), ("Throttles", "Sum")):
        covered = {d["FunctionName"] for name, d, s in shown if name == metric and s == stat}
        assert covered == functions, metric


def test_the_dashboard_shows_retry_workflow_executions_and_both_dead_letter_queues(
    dashboard: dict[str, Any],
) -> None:
    states = _aws(dashboard, "AWS/States")
    assert {name for name, _, _ in states} >= {"ExecutionsFailed", "ExecutionsSucceeded", "ExecutionsStarted"}
    assert all(d == {"StateMachineArn": "<RetryWorkflow>"} for _, d, _ in states)
    queues = {
        d["QueueName"]
        for name, d, _ in _aws(dashboard, "AWS/SQS")
        if name == "ApproximateNumberOfMessagesVisible"
    }
    assert queues == {
        "<EventPublisherDeadLetterQueue.QueueName>",
        "<RetryStarterFunctionProcessingFailureDeclinedQueue.QueueName>",
    }


def test_the_alarm_widget_lists_every_alarm(template: dict[str, Any], dashboard: dict[str, Any]) -> None:
    [widget] = [w["properties"] for w in dashboard["widgets"] if w["type"] == "alarm"]
    alarms = _resources_of_type(template, "AWS::CloudWatch::Alarm")
    assert sorted(widget["alarms"]) == sorted(f"<{name}.Arn>" for name in alarms)


# --- alarms ----------------------------------------------------------------------------------------------


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: res["Properties"]
        for name, res in _resources_of_type(template, "AWS::CloudWatch::Alarm").items()
    }


def _runbook() -> dict[str, str]:
    """docs/OPERATIONS.md's runbook: the `### <AlarmLogicalId>` entries under `## Runbook`."""
    parts = OPERATIONS.read_text(encoding="utf-8").split("\n## Runbook\n", 1)
    assert len(parts) == 2, "docs/OPERATIONS.md has no Runbook"
    section = parts[1].split("\n## ", 1)[0]
    entries = re.split(r"^### ", section, flags=re.MULTILINE)[1:]
    return {entry.split("\n", 1)[0].strip().strip("`"): entry for entry in entries}


def test_every_alarm_notifies_the_operators_topic_when_one_is_given(template: dict[str, Any]) -> None:
    assert template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    for name, alarm in _alarms(template).items():
        assert alarm.get("AlarmActions") == ALARM_ACTIONS, name
        assert alarm.get("OKActions") == ALARM_ACTIONS, name


def test_every_alarm_decides_what_missing_data_means(template: dict[str, Any]) -> None:
    for name, alarm in _alarms(template).items():
        assert alarm.get("TreatMissingData") in {"breaching", "notBreaching", "ignore", "missing"}, name
        assert alarm.get("AlarmDescription"), name


def test_every_alarm_has_a_runbook_entry_saying_what_to_check_fix_and_when_to_escalate(
    template: dict[str, Any],
) -> None:
    runbook = _runbook()
    for name in _alarms(template):
        assert name in runbook, f"docs/OPERATIONS.md has no `### {name}` runbook entry"
        entry = runbook[name].lower()
        for part in ("means", "check", "fix", "escalate"):
            assert part in entry, f"{name}: the runbook entry does not say what it {part}"
    assert set(runbook) <= set(_alarms(template)), "runbook entries for alarms that do not exist"


def test_alarms_on_custom_metrics_watch_what_the_code_emits(
    template: dict[str, Any],
    emitted: dict[str, set[frozenset[str]]],
) -> None:
    namespace, service = _powertools(template)
    for name, alarm in _alarms(template).items():
        if alarm["Namespace"].startswith("AWS/"):
            continue
        assert alarm["Namespace"] == namespace, name
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions == {"service": service}, name
        assert frozenset(dimensions) in emitted[alarm["MetricName"]], name


def _watching(template: dict[str, Any], metric: str, **dimensions: Any) -> dict[str, Any]:
    [alarm] = [
        a
        for a in _alarms(template).values()
        if a["MetricName"] == metric
        and all({"Name": k, "Value": v} in a["Dimensions"] for k, v in dimensions.items())
    ]
    return alarm


def test_the_paging_alarms_an_operator_needs_exist(
    template: dict[str, Any],
    translated: dict[str, Any],
) -> None:
    ipn = _watching(template, "IpnRejected")
    assert (ipn["Statistic"], ipn["ComparisonOperator"], ipn["TreatMissingData"]) == (
        "Sum", "GreaterThanOrEqualToThreshold", "notBreaching"
    )  # fmt: skip
    amazon = _watching(template, "AmazonTransientErrors")
    assert amazon["EvaluationPeriods"] == amazon["DatapointsToAlarm"] >= 2, "only sustained failures page"
    api = _watching(template, "5XXError", ApiName={"Ref": "AWS::StackName"})
    assert {"Name": "Stage", "Value": "v1"} in api["Dimensions"]
    for function in ("RefundApiFunction", "IpnHandlerFunction", "ReconcilerFunction"):
        errors = _watching(template, "Errors", FunctionName={"Ref": function})
        assert (errors["Threshold"], errors["ComparisonOperator"]) == (0, "GreaterThanThreshold"), function
    for queue in ("EventPublisherDeadLetterQueue", "RetryStarterFunctionProcessingFailureDeclinedQueue"):
        depth = _watching(template, "ApproximateNumberOfMessagesVisible",
                          QueueName={"Fn::GetAtt": [queue, "QueueName"]})  # fmt: skip
        assert (depth["Threshold"], depth["ComparisonOperator"]) == (0, "GreaterThanThreshold"), queue
        assert translated["Resources"][queue]["Type"] == "AWS::SQS::Queue"


def test_the_retry_starter_queue_the_alarm_watches_is_the_rules_dead_letter_queue(
    translated: dict[str, Any],
) -> None:
    rules = _resources_of_type(translated, "AWS::Events::Rule")
    [rule] = [r["Properties"] for r in rules.values() if "EventPattern" in r["Properties"]]
    [target] = rule["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == {
        "Fn::GetAtt": ["RetryStarterFunctionProcessingFailureDeclinedQueue", "Arn"]
    }


# --- tracing and logs ------------------------------------------------------------------------------------


def test_tracing_is_on_for_every_function_the_api_and_the_state_machine(
    template: dict[str, Any],
    translated: dict[str, Any],
) -> None:
    for name, function in _functions(template).items():
        assert function["Tracing"] == "Active", name
    assert template["Resources"]["RefundsApi"]["Properties"]["TracingEnabled"] is True
    assert template["Resources"]["RetryWorkflow"]["Properties"]["Tracing"] == {"Enabled": True}
    lambdas = _resources_of_type(translated, "AWS::Lambda::Function")
    assert lambdas
    for name, function in lambdas.items():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, name
    for stage in _resources_of_type(translated, "AWS::ApiGateway::Stage").values():
        assert stage["Properties"]["TracingEnabled"] is True
    for machine in _resources_of_type(translated, "AWS::StepFunctions::StateMachine").values():
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


def _handler_tree(folder: str) -> ast.Module:
    path = REPO / "functions" / folder / "app.py"
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize(
    "folder", ["refund_api", "ipn_handler", "event_publisher", "retry_starter", "retry_steps", "reconciler"]
)
def test_every_handler_logs_json_through_powertools_with_its_context_and_traces(folder: str) -> None:
    tree = _handler_tree(folder)
    [handler] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
    decorators = {ast.unparse(d).split("(")[0] for d in handler.decorator_list}
    assert {
        "logger.inject_lambda_context",
        "tracer.capture_lambda_handler",
        "metrics.log_metrics",
    } <= decorators


@pytest.mark.parametrize(
    "folder", ["refund_api", "ipn_handler", "retry_starter", "retry_steps", "reconciler"]
)
def test_handlers_that_touch_refunds_put_the_refund_id_on_their_log_lines(folder: str) -> None:
    source = ast.unparse(_handler_tree(folder))
    assert re.search(r"append_keys\([^)]*refund_id=", source) or re.search(
        r"extra=action\.to_dict\(\)", source
    ), f"{folder} logs no refund_id key"
    # The shared setup sends the library's log lines through the handler's logger (structured_library_logs).
    assert "logger, tracer, metrics = observability.handler_telemetry()" in source, folder


def test_in_lambda_the_librarys_log_lines_are_json_with_the_handlers_refund_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aws_lambda_powertools import Logger

    library = logging.getLogger(observability.LIBRARY_LOGGER)
    saved = (list(library.handlers), library.propagate, library.level)
    logging.getLogger(f"{observability.LIBRARY_LOGGER}.service.example")
    try:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "RefundApiFunction")
        logger = Logger(service="operability-test")
        observability.structured_library_logs(logger)
        logger.append_keys(refund_id="ord-1001-r1")
        capsys.readouterr()
        logging.getLogger(f"{observability.LIBRARY_LOGGER}.service.example").warning(
            "refund %s: busy", "ord-1001-r1"
        )
        [line] = capsys.readouterr().out.splitlines()
        record = json.loads(line)
        assert (record["refund_id"], record["level"], record["message"]) == (
            "ord-1001-r1",
            "WARNING",
            "refund ord-1001-r1: busy",
        )
    finally:
        library.handlers[:] = saved[0]
        library.propagate, library.level = saved[1], saved[2]


def test_outside_lambda_the_librarys_loggers_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools import Logger

    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    library = logging.getLogger(observability.LIBRARY_LOGGER)
    before = (list(library.handlers), library.propagate)
    observability.structured_library_logs(Logger(service="operability-test"))
    assert (list(library.handlers), library.propagate) == before


def test_the_operations_page_tells_where_logs_are_and_how_to_follow_one_refund() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    assert "refund_id" in text and "fields @timestamp" in text and "filter" in text
    for group in ("RefundApiLogGroup", "IpnHandlerLogGroup", "ReconcilerLogGroup", "RetryWorkflowLogGroup"):
        assert group in text, group
    assert "OperationsDashboard" in text


def test_the_operations_page_documents_every_command_of_the_operators_cli() -> None:
    from refunds_cli.main import build_parser

    text = OPERATIONS.read_text(encoding="utf-8")
    [subcommands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(subcommands.choices) >= {"status", "list", "resolve", "reconcile", "ipn"}
    for command in subcommands.choices:
        assert f"`refunds {command}" in text, command
