"""EmbeddedStack's AWS side: table, bus, secret and environment; clean exit; one at a time."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import pytest
import requests

from amazon_pay_refunds.adapters.dynamodb.schema import GSI1, TABLE_DEFINITION, TIME_TO_LIVE
from amazon_pay_refunds.adapters.mws.client import AmazonPayClient
from amazon_pay_refunds.adapters.mws.credentials import parse_credentials_secret
from amazon_pay_refunds.adapters.sns import DeploymentBinding, SnsVerifier, trust_from_environment, verify_ipn
from amazon_pay_refunds.config import load_settings
from refunds_local.stack import EmbeddedStack, StackAlreadyRunning

from .handlers import Recorder


def _sorted(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return sorted((dict(item) for item in items), key=lambda item: str(item[key]))


def test_table_definition_matches_the_templates_refunds_table(template: dict[str, Any]) -> None:
    table = template["Resources"]["RefundsTable"]["Properties"]
    assert _sorted(TABLE_DEFINITION["AttributeDefinitions"], "AttributeName") == _sorted(
        table["AttributeDefinitions"], "AttributeName"
    )
    assert TABLE_DEFINITION["KeySchema"] == [dict(k) for k in table["KeySchema"]]
    [local_gsi] = TABLE_DEFINITION["GlobalSecondaryIndexes"]
    [template_gsi] = table["GlobalSecondaryIndexes"]
    assert local_gsi["IndexName"] == template_gsi["IndexName"] == GSI1
    assert local_gsi["KeySchema"] == [dict(k) for k in template_gsi["KeySchema"]]
    assert local_gsi["Projection"] == dict(template_gsi["Projection"])
    assert dict(table["TimeToLiveSpecification"]) == TIME_TO_LIVE
    assert TABLE_DEFINITION["BillingMode"] == table["BillingMode"]
    assert (
        TABLE_DEFINITION["StreamSpecification"]["StreamViewType"]
        == (table["StreamSpecification"]["StreamViewType"])
    )


def test_the_stack_creates_that_table_with_its_stream_and_ttl(stack: EmbeddedStack) -> None:
    dynamodb = stack.client("dynamodb")
    described = dynamodb.describe_table(TableName=stack.table_name)["Table"]
    assert described["KeySchema"] == TABLE_DEFINITION["KeySchema"]
    assert described["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert described["LatestStreamArn"] == stack.stream_arn
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == [GSI1]
    ttl = dynamodb.describe_time_to_live(TableName=stack.table_name)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == (TIME_TO_LIVE["AttributeName"], "ENABLED")


def test_the_event_bus_follows_the_templates_name_pattern(
    stack: EmbeddedStack, template: dict[str, Any]
) -> None:
    pattern = template["Resources"]["RefundsBus"]["Properties"]["Name"]["Fn::Sub"]
    assert stack.bus_name == pattern.replace("${AWS::StackName}", "refunds-local") == "refunds-local-refunds"
    buses = [bus["Name"] for bus in stack.client("events").list_event_buses()["EventBuses"]]
    assert stack.bus_name in buses


def test_the_environment_is_what_the_handlers_read(stack: EmbeddedStack) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == stack.aws_url
    assert os.environ["REFUNDS_TABLE"] == stack.table_name
    assert os.environ["EVENT_BUS_NAME"] == stack.bus_name
    assert os.environ["AMAZON_PAY_CREDENTIALS_SECRET"] == stack.secret_arn
    assert os.environ["REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT"] == stack.mws_url
    assert os.environ["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert os.environ["POWERTOOLS_SERVICE_NAME"] == "amazon-pay-refunds"
    assert os.environ["SELLER_IDS"] == stack.seller_id
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ
    settings = load_settings()
    assert (settings.amazon_pay_region, settings.amazon_pay_sandbox) == ("us", True)
    assert settings.retry_delay_seconds == 2
    assert settings.max_processing_failure_retries == 1
    assert settings.amazon_pay_endpoint.url == stack.mws_url
    # boto3 with no endpoint argument (as the handlers create clients) reaches the stack's moto.
    import boto3

    assert stack.table_name in boto3.client("dynamodb").list_tables()["TableNames"]


def test_the_credentials_secret_holds_the_simulators_seller(stack: EmbeddedStack) -> None:
    import boto3

    text = boto3.client("secretsmanager").get_secret_value(
        SecretId=os.environ["AMAZON_PAY_CREDENTIALS_SECRET"]
    )
    book = parse_credentials_secret(text["SecretString"])
    assert book.default_seller_id == stack.seller_id
    client = AmazonPayClient(book.for_seller, load_settings().amazon_pay_endpoint, max_attempts=1)
    assert client.get_service_status().status  # signed with the secret's keys, accepted by the simulator


def test_the_simulator_is_served_and_throttles_by_default(stack: EmbeddedStack) -> None:
    answer = requests.post(
        f"{stack.sim_url}/simulator/captures", json={"amount": "100.00", "currency_code": "USD"}, timeout=10
    )
    assert answer.status_code == 201
    assert stack.simulator.capture_view(answer.json()["amazon_capture_id"])["amazon_capture_id"]
    assert stack.simulator.throttling is True
    assert EmbeddedStack(throttling=False).simulator.throttling is False


def test_environment_is_restored_after_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-elses-profile")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
    monkeypatch.delenv("REFUNDS_TABLE", raising=False)
    import boto3

    session_before = boto3.DEFAULT_SESSION
    before = dict(os.environ)
    with EmbeddedStack(port=0, sim_port=0, pump=False) as stack:
        assert "AWS_PROFILE" not in os.environ
        assert "AWS_ENDPOINT_URL_DYNAMODB" not in os.environ
        assert os.environ["REFUNDS_TABLE"] == stack.table_name
    assert dict(os.environ) == before
    assert boto3.DEFAULT_SESSION is session_before


def test_a_failed_start_restores_everything_and_frees_the_process() -> None:
    before = dict(os.environ)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            EmbeddedStack(port=taken.getsockname()[1], sim_port=0, pump=False).start()
    assert dict(os.environ) == before
    with EmbeddedStack(port=0, sim_port=0, pump=False) as stack:  # not refused as "already running"
        assert stack.gateway.port > 0
    assert dict(os.environ) == before


def test_a_second_stack_at_once_is_refused_and_the_first_keeps_working(stack: EmbeddedStack) -> None:
    environment = dict(os.environ)
    with pytest.raises(StackAlreadyRunning), EmbeddedStack(port=0, sim_port=0, pump=False):
        pass
    assert dict(os.environ) == environment
    assert requests.post(f"{stack.api_url}/ipn", data="{}", timeout=10).status_code == 200
    assert stack.table_name in stack.client("dynamodb").list_tables()["TableNames"]


def test_stacks_one_after_another_are_independent() -> None:
    with EmbeddedStack(port=0, sim_port=0, pump=False) as first:
        first.client("dynamodb").put_item(
            TableName=first.table_name, Item={"pk": {"S": "REFUND#left-over"}, "sk": {"S": "REFUND"}}
        )
        first_urls = (first.api_url, first.aws_url)
    ipn = Recorder()
    with EmbeddedStack(
        port=0, sim_port=0, pump=False, handler_overrides={"IpnHandlerFunction": ipn}
    ) as second:
        assert second.client("dynamodb").scan(TableName=second.table_name)["Items"] == []
        assert second.events(drain=False) == []
        assert requests.post(f"{second.api_url}/ipn", data="{}", timeout=10).status_code == 200
        assert len(ipn.calls) == 1
    for url in first_urls:
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)


def test_events_come_back_in_order_through_the_observer_rule(stack: EmbeddedStack) -> None:
    events = stack.client("events")
    for n in range(12):
        detail = {"refund_id": "r-a" if n % 2 else "r-b", "n": n}
        events.put_events(
            Entries=[
                {
                    "Source": "amazon-pay-refunds",
                    "DetailType": "Refund Pending",
                    "Detail": json.dumps(detail),
                    "EventBusName": stack.bus_name,
                }
            ]
        )
    assert [e["detail"]["n"] for e in stack.events()] == list(range(12))
    assert [e["detail"]["n"] for e in stack.events("r-a")] == [1, 3, 5, 7, 9, 11]


def test_the_simulators_ipns_reach_the_ipn_endpoint_and_verify_with_the_stacks_trust(
    stack: EmbeddedStack, ipn_handler: Recorder
) -> None:
    assert stack.simulator.ipn_url == f"{stack.api_url}/ipn"
    assert os.environ["REFUNDS_LOCAL_SNS_CA_PEM"] == stack.simulator.ca_certificate_pem
    assert os.environ["REFUNDS_LOCAL_SNS_CERT_URL_PREFIX"] == stack.simulator.certificate_url_prefix
    capture_id = stack.simulator.create_capture("100.00", "USD")
    stack.simulator.external_refund(capture_id, "5.00", "AmazonA-ZRefund")
    stack.simulator.wait_for_ipn_idle(10)
    [(event, _)] = ipn_handler.calls
    settings = load_settings()
    verified = verify_ipn(
        event["body"],
        headers=event["headers"],
        verifier=SnsVerifier(trust_from_environment()),
        binding=DeploymentBinding.of(topic_arns=settings.ipn_topic_arns, seller_ids=settings.seller_ids),
    )
    assert verified.notification is not None
    assert verified.notification.seller_id == stack.seller_id


def test_a_stack_without_ipns_leaves_the_simulator_silent() -> None:
    ipn = Recorder()
    with EmbeddedStack(
        port=0, sim_port=0, pump=False, ipn=False, handler_overrides={"IpnHandlerFunction": ipn}
    ) as stack:
        assert stack.simulator.ipn_url is None
        stack.simulator.external_refund(
            stack.simulator.create_capture("10.00", "USD"), "1.00", "AmazonA-ZRefund"
        )
        stack.simulator.wait_for_ipn_idle(5)
    assert ipn.calls == []
