"""(d) SubscriptionConfirmation: fetched once when verified and exactly SNS; refused, unfetched, otherwise."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.support.ipn_signing import OTHER_TOPIC, TOPIC, Signer, api_event

from .conftest import Endpoint

TOKEN = "2336412f37fb687f5d51e6e2425f004aed7b7526b4e5a4c5e8a1c7c5c4b3a2f1"


def confirm_url(host: str = "sns.us-east-1.amazonaws.com", scheme: str = "https", topic: str = TOPIC) -> str:
    return f"{scheme}://{host}/?Action=ConfirmSubscription&TopicArn={quote(topic, safe='')}&Token={TOKEN}"


@pytest.fixture
def signer(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> Signer:
    monkeypatch.setenv("IPN_TOPIC_ARNS", TOPIC)
    signer = Signer.sns()
    endpoint.install(signer.fetch)
    return signer


def subscription(
    signer: Signer, url: str, *, topic: str = TOPIC, message_type: str = "SubscriptionConfirmation"
) -> dict[str, Any]:
    message = f"You have chosen to subscribe to the topic {topic}. To confirm, visit the SubscribeURL."
    return api_event(
        signer.envelope(message, topic=topic, message_type=message_type, subscribe_url=url, token=TOKEN)
    )


def test_a_verified_confirmation_for_an_allowed_topic_on_an_exact_sns_url_is_fetched_once(
    endpoint: Endpoint, signer: Signer
) -> None:
    answer = endpoint.post(subscription(signer, confirm_url()))

    assert (answer.status, answer.reason) == (200, "subscription_confirmed")
    assert endpoint.subscribe.urls == [confirm_url()]


@pytest.mark.parametrize(
    "url",
    [
        confirm_url(host="attacker.example"),
        confirm_url(host="sns.us-east-1.amazonaws.com.attacker.example"),
        confirm_url(host="169.254.169.254"),
        confirm_url(scheme="http"),
        confirm_url(host="sns.us-east-1.amazonaws.com:8443"),
        confirm_url().replace("ConfirmSubscription", "Unsubscribe"),
    ],
)
def test_a_subscribe_url_that_is_not_exactly_sns_is_refused_and_never_fetched(
    endpoint: Endpoint, signer: Signer, url: str
) -> None:
    answer = endpoint.post(subscription(signer, url))

    assert (answer.status, answer.reason) == (403, "subscribe_url_invalid")
    assert endpoint.subscribe.urls == []


def test_a_confirmation_for_a_topic_this_deployment_does_not_accept_is_refused_and_never_fetched(
    endpoint: Endpoint, signer: Signer
) -> None:
    answer = endpoint.post(subscription(signer, confirm_url(topic=OTHER_TOPIC), topic=OTHER_TOPIC))

    assert (answer.status, answer.reason) == (403, "topic_not_allowed")
    assert endpoint.subscribe.urls == []


def test_a_confirmation_whose_signature_does_not_verify_is_refused_and_never_fetched(
    endpoint: Endpoint, signer: Signer
) -> None:
    event = subscription(signer, confirm_url())
    event["body"] = event["body"].replace("You have chosen", "You have not chosen")

    answer = endpoint.post(event)

    assert (answer.status, answer.reason) == (403, "signature_invalid")
    assert endpoint.subscribe.urls == []


def test_an_unsubscribe_confirmation_is_verified_logged_and_not_acted_upon(
    endpoint: Endpoint, signer: Signer
) -> None:
    answer = endpoint.post(subscription(signer, confirm_url(), message_type="UnsubscribeConfirmation"))

    assert (answer.status, answer.reason) == (200, "unsubscribe_logged")
    assert endpoint.subscribe.urls == []
