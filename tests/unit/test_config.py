from __future__ import annotations

import pytest

from amazon_pay_refunds.config import ConfigurationError, load_settings

BASE = {"REFUNDS_TABLE": "refunds", "AMAZON_PAY_CREDENTIALS_SECRET": "amazon-pay/credentials"}


def test_defaults_follow_the_spec() -> None:
    settings = load_settings(BASE)
    assert settings.amazon_pay_region == "us"
    assert settings.amazon_pay_sandbox is True
    assert settings.retry_delay_seconds == 90
    assert settings.max_processing_failure_retries == 1
    assert settings.allow_over_refund is False
    assert (
        settings.amazon_pay_endpoint.url
        == "https://mws.amazonservices.com/OffAmazonPayments_Sandbox/2013-01-01"
    )


def test_lists_are_comma_separated_and_trimmed() -> None:
    settings = load_settings({**BASE, "SELLER_IDS": " A1, B2 ,,", "IPN_TOPIC_ARNS": ""})
    assert settings.seller_ids == {"A1", "B2"}
    assert settings.ipn_topic_arns == frozenset()


def test_live_eu_endpoint() -> None:
    settings = load_settings({**BASE, "AMAZON_PAY_REGION": "de", "AMAZON_PAY_SANDBOX": "false"})
    assert (
        settings.amazon_pay_endpoint.url == "https://mws-eu.amazonservices.com/OffAmazonPayments/2013-01-01"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("AMAZON_PAY_REGION", "mars"), ("AMAZON_PAY_SANDBOX", "yes"), ("RETRY_DELAY_SECONDS", "121"),
     ("RETRY_DELAY_SECONDS", "ninety"), ("MAX_PROCESSING_FAILURE_RETRIES", "-1")],
)  # fmt: skip
def test_invalid_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load_settings({**BASE, name: value})


def test_missing_table_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="REFUNDS_TABLE"):
        load_settings({"AMAZON_PAY_CREDENTIALS_SECRET": "x"})


def test_local_stack_may_shorten_the_retry_wait_and_point_at_the_simulator() -> None:
    settings = load_settings(
        {**BASE, "RETRY_DELAY_SECONDS": "2", "REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT": "http://127.0.0.1:8701"}
    )
    assert settings.retry_delay_seconds == 2
    assert settings.amazon_pay_endpoint.host == "127.0.0.1:8701"
    assert settings.amazon_pay_endpoint.path == "/OffAmazonPayments_Sandbox/2013-01-01"


@pytest.mark.parametrize("marker", ["AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV"])
@pytest.mark.parametrize(
    "local_setting",
    ["REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT", "REFUNDS_LOCAL_SNS_CA_PEM", "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX"],
)
def test_local_settings_are_refused_inside_aws_lambda(marker: str, local_setting: str) -> None:
    with pytest.raises(ConfigurationError, match=local_setting):
        load_settings({**BASE, marker: "refunds-api", local_setting: "http://127.0.0.1:8701"})


def test_inside_lambda_the_retry_wait_is_held_to_amazons_one_to_two_minutes() -> None:
    with pytest.raises(ConfigurationError, match="RETRY_DELAY_SECONDS"):
        load_settings({**BASE, "AWS_LAMBDA_FUNCTION_NAME": "f", "RETRY_DELAY_SECONDS": "30"})


def test_topic_arns_of_the_aws_partition_are_accepted() -> None:
    topics = "arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T, arn:aws:sns:us-east-1:1:x"
    with pytest.raises(ConfigurationError):  # an account id has 12 digits
        load_settings({**BASE, "IPN_TOPIC_ARNS": topics})
    settings = load_settings({**BASE, "IPN_TOPIC_ARNS": topics.split(",")[0]})
    assert settings.ipn_topic_arns == {"arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T"}


@pytest.mark.parametrize(
    "topic",
    [
        "arn:aws-cn:sns:cn-north-1:291180941288:A3BXB0YN3XH17HA1SELLER",
        "arn:aws-us-gov:sns:us-gov-west-1:291180941288:A3BXB0YN3XH17HA1SELLER",
        "arn:aws:sqs:us-east-1:291180941288:A3BXB0YN3XH17HA1SELLER",
        "A3BXB0YN3XH17HA1SELLER",
    ],
)
def test_a_topic_arn_outside_the_aws_partition_or_not_sns_is_a_configuration_error(topic: str) -> None:
    with pytest.raises(ConfigurationError, match="IPN_TOPIC_ARNS"):
        load_settings({**BASE, "IPN_TOPIC_ARNS": topic})
