"""Amazon Pay notifications inside SNS messages: fields, safe XML, and the deployment binding."""

from __future__ import annotations

import json

import pytest

from amazon_pay_refunds.adapters.sns import (
    CertificateResponse,
    DeploymentBinding,
    MalformedNotification,
    NotAuthentic,
    Reason,
    SnsVerifier,
    notification_xml,
    parse_notification,
    parse_sns_message,
    verify_ipn,
)
from amazon_pay_refunds.adapters.sns.ipn import AMAZON_PAY_IPN_ACCOUNTS, topic_sellers
from tests.support import sns_forge as forge
from tests.support.sns_fixtures import RealFixture

NAMESPACE = "{https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01}"


def message_of(real_fixtures: list[RealFixture], name: str) -> str:
    fixture = next(fixture for fixture in real_fixtures if fixture.name == name)
    return parse_sns_message(fixture.body).message


def test_a_real_refund_ipn_yields_its_amazon_pay_fields(real_fixtures: list[RealFixture]) -> None:
    notification = parse_notification(message_of(real_fixtures, "amazon-pay-refund-completed-eu-2017.json"))

    assert (
        notification.notification_type,
        notification.seller_id,
        notification.notification_reference_id,
        notification.release_environment,
        notification.marketplace_id,
        notification.version,
        notification.timestamp,
        notification.is_sample,
    ) == (
        "PaymentRefund",
        "AOPZVV2STP28T",
        "f021fa22-bc5f-48d6-a5fa-91e1272eec51",
        "Sandbox",
        "136311",
        "2013-01-01",
        "2017-06-28T18:15:08.001Z",
        False,
    )


def test_notification_data_stays_the_raw_xml_string(real_fixtures: list[RealFixture]) -> None:
    notification = parse_notification(message_of(real_fixtures, "amazon-pay-refund-completed-eu-2017.json"))

    assert notification.notification_data.startswith(
        '<?xml version="1.0" encoding="UTF-8"?><RefundNotification'
    )
    assert "<AmazonRefundId>S02-8274313-3487267-R019346</AmazonRefundId>" in notification.notification_data


def test_a_seller_central_test_ipn_is_marked_as_a_sample(real_fixtures: list[RealFixture]) -> None:
    notification = parse_notification(message_of(real_fixtures, "amazon-pay-order-reference-us-2015.json"))

    assert notification.is_sample is True


def test_the_real_notification_data_parses_as_safe_xml(real_fixtures: list[RealFixture]) -> None:
    notification = parse_notification(message_of(real_fixtures, "amazon-pay-refund-completed-eu-2017.json"))

    root = notification_xml(notification.notification_data)

    assert root.findtext(f"{NAMESPACE}RefundDetails/{NAMESPACE}RefundStatus/{NAMESPACE}State") == "Completed"


@pytest.mark.parametrize(
    "missing", ["NotificationReferenceId", "NotificationType", "SellerId", "NotificationData"]
)
def test_a_notification_without_a_required_field_is_malformed(missing: str) -> None:
    document = json.loads(forge.ipn_message())
    del document[missing]

    with pytest.raises(MalformedNotification) as refused:
        parse_notification(json.dumps(document))

    assert refused.value.reason is Reason.FIELD_MISSING


def test_a_notification_with_a_non_boolean_is_sample_is_malformed() -> None:
    with pytest.raises(MalformedNotification) as refused:
        parse_notification(forge.ipn_message(IsSample=1))

    assert refused.value.reason is Reason.FIELD_INVALID


def test_a_notification_that_is_a_json_array_is_malformed() -> None:
    with pytest.raises(MalformedNotification) as refused:
        parse_notification("[]")

    assert refused.value.reason is Reason.NOTIFICATION_NOT_OBJECT


def test_a_binding_needs_topics_or_sellers() -> None:
    with pytest.raises(ValueError, match="topic ARNs or seller ids"):
        DeploymentBinding()


def test_without_listed_topics_an_amazon_pay_topic_of_an_allowed_seller_is_accepted(
    sns_identity: forge.Identity, sns_spy: forge.SpyFetcher
) -> None:
    document = forge.envelope(sns_identity)
    verifier = SnsVerifier(fetcher=sns_spy, clock=lambda: forge.NOW)

    ipn = verify_ipn(
        forge.body(document),
        headers=forge.headers_for(document),
        verifier=verifier,
        binding=DeploymentBinding(seller_ids=frozenset({forge.SELLER})),
    )

    assert ipn.notification is not None and ipn.notification.seller_id == forge.SELLER


def test_with_listed_topics_any_seller_on_them_is_accepted(
    sns_identity: forge.Identity, sns_spy: forge.SpyFetcher
) -> None:
    document = forge.envelope(sns_identity, message=forge.ipn_message(seller_id="A2ANOTHER"))
    verifier = SnsVerifier(fetcher=sns_spy, clock=lambda: forge.NOW)

    ipn = verify_ipn(
        forge.body(document),
        headers=None,
        verifier=verifier,
        binding=DeploymentBinding(topic_arns=frozenset({forge.TOPIC})),
    )

    assert ipn.notification is not None and ipn.notification.seller_id == "A2ANOTHER"


def test_the_binding_checks_the_topic_of_a_subscription_confirmation(
    sns_identity: forge.Identity, sns_spy: forge.SpyFetcher
) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:someone-elses"
    document = forge.envelope(
        sns_identity,
        topic=topic,
        message_type="SubscriptionConfirmation",
        message="You have chosen to subscribe.",
        subscribe_url=f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=t",
        token="t",
    )
    verifier = SnsVerifier(fetcher=sns_spy, clock=lambda: forge.NOW)

    with pytest.raises(NotAuthentic) as refused:
        verify_ipn(
            forge.body(document),
            headers=None,
            verifier=verifier,
            binding=DeploymentBinding(seller_ids=frozenset({forge.SELLER})),
        )

    assert refused.value.reason is Reason.TOPIC_NOT_ALLOWED


def test_a_verified_subscription_confirmation_for_an_allowed_topic_is_returned_without_a_notification(
    sns_identity: forge.Identity,
) -> None:
    url = f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={forge.TOPIC}&Token=t"
    document = forge.envelope(
        sns_identity,
        message_type="SubscriptionConfirmation",
        message="You have chosen to subscribe.",
        subscribe_url=url,
        token="t",
    )
    spy = forge.SpyFetcher({forge.CERT_URL: CertificateResponse(200, sns_identity.pem)})
    verifier = SnsVerifier(fetcher=spy, clock=lambda: forge.NOW)

    ipn = verify_ipn(
        forge.body(document),
        headers=forge.headers_for(document),
        verifier=verifier,
        binding=DeploymentBinding(topic_arns=frozenset({forge.TOPIC})),
    )

    assert (ipn.sns.subscribe_url, ipn.notification, spy.urls) == (url, None, [forge.CERT_URL])


@pytest.mark.parametrize(
    ("topic", "sellers"),
    [
        ("arn:aws:sns:us-east-1:291180941288:A3BXB0YN3XH17HA1EXAMPLESELLER", {"A1EXAMPLESELLER"}),
        ("arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T", {"AOPZVV2STP28T"}),
        ("arn:aws:sns:us-east-1:291180941288:A3BXB0YN3XH17HA1EXAMPLESELLERX", set()),  # another seller
        ("arn:aws:sns:us-east-1:291180941288:A1EXAMPLESELLER", set()),  # no marketplace prefix
        ("arn:aws:sns:us-east-1:291180941288:a3bxb0yn3xh17hA1EXAMPLESELLER", set()),
        ("arn:aws:sns:us-east-1:123456789012:A3BXB0YN3XH17HA1EXAMPLESELLER", set()),  # not Amazon Pay's
        ("arn:aws-cn:sns:cn-north-1:291180941288:A3BXB0YN3XH17HA1EXAMPLESELLER", set()),
        ("arn:aws-us-gov:sns:us-gov-west-1:291180941288:A3BXB0YN3XH17HA1EXAMPLESELLER", set()),
    ],
)
def test_a_topic_belongs_to_a_seller_by_amazon_pays_naming_in_its_account(
    topic: str, sellers: set[str]
) -> None:
    candidates = ["A1EXAMPLESELLER", "AOPZVV2STP28T", "A2OTHERSELLER"]

    assert topic_sellers(topic, candidates, AMAZON_PAY_IPN_ACCOUNTS) == sellers


@pytest.mark.parametrize(
    "topic",
    ["arn:aws-cn:sns:cn-north-1:291180941288:x", "arn:aws-us-gov:sns:us-gov-west-1:291180941288:x", "x"],
)
def test_a_binding_refuses_listed_topics_outside_the_aws_partition(topic: str) -> None:
    with pytest.raises(ValueError, match="aws partition"):
        DeploymentBinding.of(topic_arns=[topic])
