"""The real signed SNS messages and Amazon Pay IPNs verify, at their own time, and only untampered."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from amazon_pay_refunds.adapters.sns import (
    CertificateResponse,
    NotAuthentic,
    Reason,
    SnsVerifier,
    parse_sns_message,
)
from tests.support import sns_forge as forge
from tests.support.paths import FIXTURES
from tests.support.sns_fixtures import RealFixture

FIXTURE_NAMES = sorted(path.name for path in (FIXTURES / "sns").glob("*.json"))


def fixture_named(real_fixtures: list[RealFixture], name: str) -> RealFixture:
    return next(fixture for fixture in real_fixtures if fixture.name == name)


def verifier_at_message_time(fixture: RealFixture) -> tuple[SnsVerifier, forge.SpyFetcher]:
    spy = forge.SpyFetcher({fixture.cert_url: CertificateResponse(200, fixture.certificate_pem)})
    moment = parse_sns_message(fixture.body).timestamp
    return SnsVerifier(fetcher=spy, clock=lambda: moment, max_age=None), spy


def tampered(fixture: RealFixture, **changes: str) -> str:
    return json.dumps({**fixture.document, **changes})


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_real_message_verifies_at_its_own_time(real_fixtures: list[RealFixture], name: str) -> None:
    fixture = fixture_named(real_fixtures, name)
    verifier, spy = verifier_at_message_time(fixture)

    message = verifier.verify(fixture.body, headers=None)

    assert message.message_id == fixture.document["MessageId"]
    assert spy.urls == [fixture.cert_url]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_real_message_verifies_with_the_sns_headers(real_fixtures: list[RealFixture], name: str) -> None:
    fixture = fixture_named(real_fixtures, name)
    verifier, _ = verifier_at_message_time(fixture)

    message = verifier.verify(fixture.body, headers=forge.headers_for(fixture.document))

    assert message.topic_arn == fixture.document["TopicArn"]


def _signed_fields(name: str) -> list[tuple[str, str]]:
    document = json.loads((FIXTURES / "sns" / name).read_bytes())
    fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn"]
    return [(name, field) for field in fields if field in document]


@pytest.mark.parametrize(("name", "field"), [pair for name in FIXTURE_NAMES for pair in _signed_fields(name)])
def test_tampering_with_a_signed_field_breaks_the_signature(
    real_fixtures: list[RealFixture], name: str, field: str
) -> None:
    fixture = fixture_named(real_fixtures, name)
    verifier, _ = verifier_at_message_time(fixture)
    value = fixture.document[field]
    # Timestamps stay parseable and within the clock skew: only the signature can object.
    changed = value[:-2] + ("8Z" if value[-2] != "8" else "7Z") if field == "Timestamp" else value + "x"

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(tampered(fixture, **{field: changed}), headers=None)

    assert refused.value.reason is Reason.SIGNATURE_INVALID


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_changing_the_type_breaks_the_signature(real_fixtures: list[RealFixture], name: str) -> None:
    fixture = fixture_named(real_fixtures, name)
    verifier, _ = verifier_at_message_time(fixture)
    as_unsubscribe = {
        "Type": "UnsubscribeConfirmation",
        "SubscribeURL": "https://example.invalid/",
        "Token": "t",
    }

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(tampered(fixture, **as_unsubscribe), headers=None)

    assert refused.value.reason is Reason.SIGNATURE_INVALID


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_swapping_the_signature_version_breaks_the_signature(
    real_fixtures: list[RealFixture], name: str
) -> None:
    fixture = fixture_named(real_fixtures, name)
    verifier, _ = verifier_at_message_time(fixture)
    other = "2" if fixture.document["SignatureVersion"] == "1" else "1"

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(tampered(fixture, SignatureVersion=other), headers=None)

    assert refused.value.reason is Reason.SIGNATURE_INVALID


def test_adding_a_subject_breaks_the_signature(real_fixtures: list[RealFixture]) -> None:
    fixture = fixture_named(real_fixtures, "aws-sns-hello-sigv2-2022.json")
    verifier, _ = verifier_at_message_time(fixture)

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(tampered(fixture, Subject="Hello world"), headers=None)

    assert refused.value.reason is Reason.SIGNATURE_INVALID


def test_reserialising_the_amazon_pay_message_breaks_the_signature(real_fixtures: list[RealFixture]) -> None:
    fixture = fixture_named(real_fixtures, "amazon-pay-refund-completed-eu-2017.json")
    verifier, _ = verifier_at_message_time(fixture)
    reserialised = json.dumps(json.loads(fixture.document["Message"]), separators=(",", ":"))

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(tampered(fixture, Message=reserialised), headers=None)

    assert refused.value.reason is Reason.SIGNATURE_INVALID


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_real_message_checked_today_fails_on_its_expired_certificate(
    real_fixtures: list[RealFixture], name: str
) -> None:
    fixture = fixture_named(real_fixtures, name)
    spy = forge.SpyFetcher({fixture.cert_url: CertificateResponse(200, fixture.certificate_pem)})
    verifier = SnsVerifier(fetcher=spy, clock=lambda: datetime.now(UTC), max_age=None)

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(fixture.body, headers=None)

    assert refused.value.reason is Reason.CERTIFICATE_EXPIRED


def test_real_message_checked_today_with_the_default_age_limit_is_stale(
    real_fixtures: list[RealFixture],
) -> None:
    fixture = fixture_named(real_fixtures, "amazon-pay-refund-completed-eu-2017.json")
    spy = forge.SpyFetcher({fixture.cert_url: CertificateResponse(200, fixture.certificate_pem)})

    with pytest.raises(NotAuthentic) as refused:
        SnsVerifier(fetcher=spy).verify(fixture.body, headers=None)

    assert refused.value.reason is Reason.MESSAGE_STALE
    assert spy.urls == []
