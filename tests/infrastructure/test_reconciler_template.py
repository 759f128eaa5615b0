"""template.yaml's reconciler: its schedule and the alarms on its metrics (its role: tests/e2e/test_iam)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from amazon_pay_refunds.core.reconciliation import open_refund_stats
from amazon_pay_refunds.use_cases.reconciliation import ReconciliationReport
from tests.support.template import resources_of_type as _resources_of_type
from tests.support.template import template_functions as _functions


@pytest.fixture
def reconciler(template: dict[str, Any]) -> dict[str, Any]:
    return _functions(template)["ReconcilerFunction"]


def test_the_reconciler_runs_every_five_minutes_within_a_minute(reconciler: dict[str, Any]) -> None:
    [event] = reconciler["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == "rate(5 minutes)"
    assert event["Properties"].get("Enabled", True) is True
    assert 30 <= reconciler["Timeout"] <= 120
    assert reconciler["CodeUri"] == "functions/reconciler/"


def test_only_one_reconciler_runs_at_a_time_and_a_missed_run_is_not_replayed(
    reconciler: dict[str, Any],
) -> None:
    assert reconciler["ReservedConcurrentExecutions"] == 1
    assert reconciler["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert reconciler["EventInvokeConfig"]["MaximumEventAgeInSeconds"] < 300


def test_the_schedule_becomes_a_rule_invoking_the_reconciler(translated: dict[str, Any]) -> None:
    rules = _resources_of_type(translated, "AWS::Events::Rule")
    scheduled = [r["Properties"] for r in rules.values() if r["Properties"].get("ScheduleExpression")]
    assert [r["ScheduleExpression"] for r in scheduled] == ["rate(5 minutes)"]
    [target] = scheduled[0]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ReconcilerFunction", "Arn"]}


def _alarm(template: dict[str, Any], metric: str) -> dict[str, Any]:
    [alarm] = [
        a["Properties"]
        for a in _resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == metric
    ]
    found: dict[str, Any] = alarm
    return found


def _emitted_metric_dimensions(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    """What the handler's publish_metrics prints (EMF): metric name → its dimensions and namespace."""
    from functions.reconciler import app

    now = datetime.now(UTC)
    report = ReconciliationReport(now, 0, True, (), 0, (), open_refund_stats([], now))
    capsys.readouterr()
    app.publish_metrics(report)
    app.metrics.flush_metrics()
    found: dict[str, dict[str, str]] = {}
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                dims = {name: document[name] for name in directive["Dimensions"][0]}
                found[metric["Name"]] = {"Namespace": directive["Namespace"], **dims}
    return found


@pytest.mark.parametrize("metric", ["OldestOpenRefundAgeSeconds", "ManualActionRequiredRefunds"])
def test_the_alarms_watch_metrics_the_reconciler_publishes(
    template: dict[str, Any],
    metric: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alarm = _alarm(template, metric)
    emitted = _emitted_metric_dimensions(capsys)[metric]
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert {"Namespace": alarm["Namespace"], **dimensions} == emitted
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert dimensions == {"service": variables["POWERTOOLS_SERVICE_NAME"]}


def test_an_open_refund_older_than_an_hour_raises_the_alarm_and_so_does_a_silent_reconciler(
    template: dict[str, Any],
) -> None:
    alarm = _alarm(template, "OldestOpenRefundAgeSeconds")
    assert alarm["Threshold"] == {"Ref": "OpenRefundAgeAlarmSeconds"}
    assert template["Parameters"]["OpenRefundAgeAlarmSeconds"]["Default"] == 3600
    assert (alarm["ComparisonOperator"], alarm["Statistic"]) == ("GreaterThanThreshold", "Maximum")
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 1800


def test_any_refund_waiting_for_manual_action_raises_the_alarm(template: dict[str, Any]) -> None:
    alarm = _alarm(template, "ManualActionRequiredRefunds")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_alarms_notify_the_operators_topic_only_when_one_is_given(template: dict[str, Any]) -> None:
    assert template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    expected = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name in ("OldestOpenRefundAgeAlarm", "ManualActionRequiredAlarm", "ReconcilerErrorsAlarm"):
        properties = template["Resources"][name]["Properties"]
        assert properties["AlarmActions"] == expected, name
        assert properties["OKActions"] == expected, name


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("", True), ("arn:aws:sns:eu-west-1:123456789012:refund-ops", True),
     ("arn:aws:sqs:eu-west-1:1:q", False),
     ("arn:aws:sns:eu-west-1:123456789012:a,arn:aws:sns:eu-west-1:1:b", False)],
)  # fmt: skip
def test_the_alarm_topic_is_empty_or_one_sns_topic(
    template: dict[str, Any],
    value: str,
    allowed: bool,
) -> None:
    parameter = template["Parameters"]["AlarmTopicArn"]
    assert parameter["Default"] == ""
    assert (re.fullmatch(parameter["AllowedPattern"], value) is not None) is allowed
