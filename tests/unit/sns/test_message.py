"""The SNS envelope: what is signed, header checks, and error texts that never echo the body."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from amazon_pay_refunds.adapters.sns import (
    DEFAULT_MAX_AGE,
    CertificateUnavailable,
    MalformedNotification,
    NotAuthentic,
    Reason,
    SnsVerifier,
    parse_sns_message,
    string_to_sign,
)
from amazon_pay_refunds.adapters.sns.errors import (
    MALFORMED_REASONS,
    NOT_AUTHENTIC_REASONS,
    UNAVAILABLE_REASONS,
)
from tests.support import sns_forge as forge
from tests.support.sns_fixtures import RealFixture


def test_the_string_to_sign_of_a_notification_without_subject(real_fixtures: list[RealFixture]) -> None:
    fixture = next(f for f in real_fixtures if f.name == "aws-sns-hello-sigv1-2022.json")
    d = fixture.document

    assert (
        string_to_sign(parse_sns_message(fixture.body))
        == (
            f"Message\nHello world\nMessageId\n{d['MessageId']}\nTimestamp\n{d['Timestamp']}\n"
            f"TopicArn\n{d['TopicArn']}\nType\nNotification\n"
        ).encode()
    )


def test_the_string_to_sign_of_a_notification_with_subject(real_fixtures: list[RealFixture]) -> None:
    fixture = next(f for f in real_fixtures if f.name == "aws-sns-hello-sigv1-subject-2022.json")

    assert b"\nSubject\nHello world\nTimestamp\n" in string_to_sign(parse_sns_message(fixture.body))


def test_the_string_to_sign_of_a_subscription_confirmation(sns_identity: forge.Identity) -> None:
    document = forge.envelope(
        sns_identity, message_type="SubscriptionConfirmation", message="m", subscribe_url="u", token="t"
    )

    assert (
        string_to_sign(parse_sns_message(forge.body(document)))
        == (
            f"Message\nm\nMessageId\n{document['MessageId']}\nSubscribeURL\nu\nTimestamp\n{document['Timestamp']}\n"
            f"Token\nt\nTopicArn\n{document['TopicArn']}\nType\nSubscriptionConfirmation\n"
        ).encode()
    )


def test_the_message_keeps_its_json_escapes_exactly_as_decoded(real_fixtures: list[RealFixture]) -> None:
    fixture = next(f for f in real_fixtures if f.name == "amazon-pay-refund-completed-eu-2017.json")

    assert parse_sns_message(fixture.body).message == fixture.document["Message"]


def test_a_lone_surrogate_in_a_signed_field_is_malformed(sns_identity: forge.Identity) -> None:
    text = forge.body(forge.envelope(sns_identity)).replace('"Message": "', '"Message": "\\ud800', 1)

    with pytest.raises(MalformedNotification) as refused:
        string_to_sign(parse_sns_message(text))

    assert refused.value.reason is Reason.FIELD_INVALID


def test_header_names_are_compared_case_insensitively(
    sns_identity: forge.Identity, sns_spy: forge.SpyFetcher
) -> None:
    document = forge.envelope(sns_identity)
    headers = {name.upper(): value for name, value in forge.headers_for(document).items()}

    message = SnsVerifier(fetcher=sns_spy, clock=lambda: forge.NOW).verify(
        forge.body(document), headers=headers
    )

    assert message.message_id == document["MessageId"]


def test_the_verifier_exposes_the_message_timestamp(
    sns_identity: forge.Identity, sns_spy: forge.SpyFetcher
) -> None:
    document = forge.envelope(sns_identity)

    message = SnsVerifier(fetcher=sns_spy, clock=lambda: forge.NOW).verify(forge.body(document), headers=None)

    assert message.timestamp.isoformat() == "2024-05-01T11:59:30.123000+00:00"


def test_a_message_fourteen_days_old_passes_the_default_age_limit(
    sns_identity: forge.Identity, sns_spy: forge.SpyFetcher
) -> None:
    """SNS retries for up to 14 days; the default limit (15 days) keeps a margin, and past it refuses."""
    envelope = forge.envelope(sns_identity)
    verifier = SnsVerifier(fetcher=sns_spy, clock=lambda: forge.NOW + timedelta(days=14))

    message = verifier.verify(forge.body(envelope), headers=None)

    assert message.message_id == envelope["MessageId"]
    too_late = SnsVerifier(fetcher=sns_spy, clock=lambda: forge.NOW + DEFAULT_MAX_AGE + timedelta(seconds=1))
    with pytest.raises(NotAuthentic) as stale:
        too_late.verify(forge.body(envelope), headers=None)
    assert stale.value.reason is Reason.MESSAGE_STALE


def test_error_texts_never_echo_field_values(sns_identity: forge.Identity) -> None:
    secret = "s3cr3t-value-from-the-body"
    document = {**forge.envelope(sns_identity), "Timestamp": secret, "Signature": secret}

    with pytest.raises(MalformedNotification) as refused:
        parse_sns_message(json.dumps(document))

    assert secret not in str(refused.value)


def test_error_texts_never_echo_the_certificate_url(sns_identity: forge.Identity) -> None:
    url = "https://evil.example/s3cr3t-token/SimpleNotificationService-0123.pem"
    body = forge.body(forge.envelope(sns_identity, cert_url=url))

    with pytest.raises(NotAuthentic) as refused:
        SnsVerifier(fetcher=forge.SpyFetcher(), clock=lambda: forge.NOW).verify(body, headers=None)

    assert "s3cr3t" not in str(refused.value)


def test_every_reason_belongs_to_exactly_one_outcome() -> None:
    families = [MALFORMED_REASONS, NOT_AUTHENTIC_REASONS, UNAVAILABLE_REASONS]

    assert all(sum(reason in family for family in families) == 1 for reason in Reason)


def test_an_exception_refuses_a_reason_of_another_outcome() -> None:
    with pytest.raises(ValueError, match="signature_invalid"):
        CertificateUnavailable(Reason.SIGNATURE_INVALID, "x")


def test_outcomes_map_to_http_statuses() -> None:
    statuses = (
        MalformedNotification(Reason.BODY_NOT_JSON, "x").http_status,
        NotAuthentic(Reason.SIGNATURE_INVALID, "x").http_status,
        CertificateUnavailable(Reason.CERTIFICATE_FETCH_FAILED, "x").http_status,
    )

    assert statuses == (400, 403, 503)
