# ruff: noqa: E501 (the corpus is a table: one case per line)
"""A corpus of hostile SNS posts: each is refused with its named reason, and nothing is ever fetched but the
genuine SNS certificate URL. URL tricks are served a valid certificate by the spy, so that a verifier
without the URL policy would accept them: only the policy can make these tests pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from amazon_pay_refunds.adapters.sns import (
    CertificateResponse,
    DeploymentBinding,
    MalformedNotification,
    NotAuthentic,
    Reason,
    SnsVerificationError,
    SnsVerifier,
    verify_ipn,
)
from tests.support import sns_forge as forge
from tests.support.sns_forge import CERT_URL, NOW, SELLER, TOPIC, Identity


@dataclass(frozen=True)
class Keys:
    sns: Identity
    attacker: Identity
    ec_sns: Identity
    expired: Identity
    not_yet_valid: Identity


@pytest.fixture(scope="module")
def keys(sns_identity: Identity, attacker_identity: Identity) -> Keys:
    return Keys(
        sns=sns_identity,
        attacker=attacker_identity,
        ec_sns=forge.ec_identity("sns.amazonaws.com"),
        expired=forge.make_identity(
            "sns.amazonaws.com", not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1)
        ),
        not_yet_valid=forge.make_identity(
            "sns.amazonaws.com", not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=400)
        ),
    )


@dataclass(frozen=True)
class Attempt:
    body: str | bytes
    headers: dict[str, str] | None = None
    responses: dict[str, CertificateResponse] = field(default_factory=dict)
    clock: datetime = NOW
    topics: frozenset[str] = frozenset({TOPIC})
    sellers: frozenset[str] = frozenset({SELLER})


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Keys], Attempt]
    error: type[SnsVerificationError]
    reason: Reason


def signed(keys: Keys, *, signer: Identity | None = None, **kwargs: Any) -> dict[str, Any]:
    return forge.envelope(signer or keys.sns, **kwargs)


def post(document: dict[str, Any], **kwargs: Any) -> Attempt:
    return Attempt(forge.body(document), headers=forge.headers_for(document), **kwargs)


def url_trick(url: str) -> Callable[[Keys], Attempt]:
    def build(keys: Keys) -> Attempt:
        return post(signed(keys, cert_url=url), responses={url: CertificateResponse(200, keys.sns.pem)})

    return build


def served(answer: Callable[[Keys], CertificateResponse]) -> Callable[[Keys], Attempt]:
    def build(keys: Keys) -> Attempt:
        return post(signed(keys), responses={CERT_URL: answer(keys)})

    return build


def served_pem(text: Callable[[Keys], bytes]) -> Callable[[Keys], Attempt]:
    return served(lambda keys: CertificateResponse(200, text(keys)))


def raw(text: str | bytes) -> Callable[[Keys], Attempt]:
    return lambda keys: Attempt(text)


def without(name: str) -> Callable[[Keys], Attempt]:
    def build(keys: Keys) -> Attempt:
        document = signed(keys)
        del document[name]
        return Attempt(forge.body(document))

    return build


def replaced(**changes: Any) -> Callable[[Keys], Attempt]:
    return lambda keys: Attempt(forge.body({**signed(keys), **changes}))


def with_headers(**changes: str) -> Callable[[Keys], Attempt]:
    def build(keys: Keys) -> Attempt:
        document = signed(keys)
        headers = {**forge.headers_for(document), **changes}
        return Attempt(forge.body(document), headers={k: v for k, v in headers.items() if v})

    return build


def notification_data(xml: str) -> Callable[[Keys], Attempt]:
    return lambda keys: post(signed(keys, message=forge.ipn_message(notification_data=xml)))


def subscription(subscribe_url: str) -> Callable[[Keys], Attempt]:
    def build(keys: Keys) -> Attempt:
        document = signed(
            keys,
            message_type="SubscriptionConfirmation",
            message="You have chosen to subscribe to the topic.",
            subscribe_url=subscribe_url,
            token="2336412f37f",
        )
        return post(document)

    return build


OTHER_MERCHANT_TOPIC = "arn:aws:sns:us-east-1:291180941288:A3BXB0YN3XH17HA3OTHERMERCHANT"
SECOND_SELLER = "A2SECONDSELLER"
SECOND_SELLER_TOPIC = f"arn:aws:sns:us-east-1:291180941288:A3BXB0YN3XH17H{SECOND_SELLER}"


def other_merchants_subscription(keys: Keys) -> Attempt:
    """A genuine-looking confirmation for another merchant's topic in Amazon Pay's account."""
    url = f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={OTHER_MERCHANT_TOPIC}&Token=t"
    document = signed(
        keys,
        topic=OTHER_MERCHANT_TOPIC,
        message_type="SubscriptionConfirmation",
        message="You have chosen to subscribe to the topic.",
        subscribe_url=url,
        token="t",
    )
    return post(document, topics=frozenset())


PATH = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
HOST = "sns.us-east-1.amazonaws.com"
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<RefundNotification>&lol3;</RefundNotification>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<RefundNotification>&xxe;</RefundNotification>"
)
EXTERNAL_DTD = '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><RefundNotification/>'
TWO_CERTIFICATES: Callable[[Keys], bytes] = lambda keys: keys.sns.pem + keys.attacker.pem  # noqa: E731

CASES = [
    # Certificate URL: refused before any fetch.
    Case("http-scheme", url_trick(f"http://{HOST}{PATH}"), NotAuthentic, Reason.CERT_URL_SCHEME),
    Case("no-scheme", url_trick(f"//{HOST}{PATH}"), NotAuthentic, Reason.CERT_URL_SCHEME),
    Case("file-scheme", url_trick(f"file:///{HOST}{PATH}"), NotAuthentic, Reason.CERT_URL_SCHEME),
    Case("lookalike-suffix", url_trick(f"https://{HOST}.evil.example{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("lookalike-prefix", url_trick(f"https://evil{HOST}{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("subdomain", url_trick(f"https://a.{HOST}{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("wrong-tld", url_trick(f"https://sns.us-east-1.amazonaws.co{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("dash-host", url_trick(f"https://sns-us-east-1.amazonaws.com{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("no-region", url_trick(f"https://sns.amazonaws.com{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("s3-host", url_trick(f"https://s3.amazonaws.com/bucket{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("cn-suffix-on-us", url_trick(f"https://{HOST}.cn{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("trailing-dot", url_trick(f"https://{HOST}.{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("upper-case-host", url_trick(f"https://{HOST.upper()}{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("ip-host", url_trick(f"https://54.239.0.1{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("fragment-host", url_trick(f"https://evil.example#@{HOST}{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("userinfo-sns", url_trick(f"https://{HOST}@evil.example{PATH}"), NotAuthentic, Reason.CERT_URL_USERINFO),
    Case("userinfo-evil", url_trick(f"https://evil.example@{HOST}{PATH}"), NotAuthentic, Reason.CERT_URL_USERINFO),
    Case("port-443", url_trick(f"https://{HOST}:443{PATH}"), NotAuthentic, Reason.CERT_URL_PORT),
    Case("port-8443", url_trick(f"https://{HOST}:8443{PATH}"), NotAuthentic, Reason.CERT_URL_PORT),
    Case("query-ending-pem", url_trick(f"https://{HOST}/?x=SimpleNotificationService-a.pem"), NotAuthentic, Reason.CERT_URL_QUERY),
    Case("query-after-pem", url_trick(f"https://{HOST}{PATH}?a=.pem"), NotAuthentic, Reason.CERT_URL_QUERY),
    Case("fragment", url_trick(f"https://{HOST}{PATH}#x.pem"), NotAuthentic, Reason.CERT_URL_FRAGMENT),
    Case("percent-path", url_trick(f"https://{HOST}/%53impleNotificationService-0123456789abcdef.pem"), NotAuthentic, Reason.CERT_URL_ENCODING),
    Case("percent-host", url_trick(f"https://sns%2eus-east-1.amazonaws.com{PATH}"), NotAuthentic, Reason.CERT_URL_ENCODING),
    Case("dot-segments", url_trick(f"https://{HOST}{PATH}/../evil.pem"), NotAuthentic, Reason.CERT_URL_PATH),
    Case("directory", url_trick(f"https://{HOST}/certs{PATH}"), NotAuthentic, Reason.CERT_URL_PATH),
    Case("not-hex", url_trick(f"https://{HOST}/SimpleNotificationService-zzzzzzzzzzzzzzzzzzzz.pem"), NotAuthentic, Reason.CERT_URL_PATH),
    Case("other-file", url_trick(f"https://{HOST}/evil.pem"), NotAuthentic, Reason.CERT_URL_PATH),
    Case("backslash", url_trick(f"https://{HOST}\\@evil.example{PATH}"), NotAuthentic, Reason.CERT_URL_MALFORMED),
    Case("newline", url_trick(f"https://{HOST}{PATH}\n"), NotAuthentic, Reason.CERT_URL_MALFORMED),
    Case("unknown-region", url_trick(f"https://sns.zz-nowhere-9.amazonaws.com{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("region-shaped-typo", url_trick(f"https://sns.us-east-9.amazonaws.com{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("china-partition-host", url_trick(f"https://sns.cn-north-1.amazonaws.com.cn{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("govcloud-host", url_trick(f"https://sns.us-gov-west-1.amazonaws.com{PATH}"), NotAuthentic, Reason.CERT_URL_HOST),
    Case("homoglyph", url_trick(f"https://\u0455ns.us-east-1.amazonaws.com{PATH}"), NotAuthentic, Reason.CERT_URL_MALFORMED),
    # What the genuine URL answers.
    Case("redirect", served(lambda keys: CertificateResponse(301, b"")), NotAuthentic, Reason.CERTIFICATE_REDIRECT),
    Case("not-found", served(lambda keys: CertificateResponse(404, b"")), NotAuthentic, Reason.CERTIFICATE_NOT_FOUND),
    Case("text-before-pem", served_pem(lambda keys: b"attacker text\n" + keys.sns.pem), NotAuthentic, Reason.CERTIFICATE_NOT_PEM),
    Case("text-after-pem", served_pem(lambda keys: keys.sns.pem + b"attacker text\n"), NotAuthentic, Reason.CERTIFICATE_NOT_PEM),
    Case("two-certificates", served_pem(TWO_CERTIFICATES), NotAuthentic, Reason.CERTIFICATE_NOT_PEM),
    Case("der", served_pem(lambda keys: keys.sns.der), NotAuthentic, Reason.CERTIFICATE_NOT_PEM),
    Case("oversized-certificate", served_pem(lambda keys: keys.sns.pem + b" " * 70_000), NotAuthentic, Reason.CERTIFICATE_TOO_LARGE),
    Case("wrong-subject", served_pem(lambda keys: keys.attacker.pem), NotAuthentic, Reason.CERTIFICATE_SUBJECT),
    Case("ec-key", served_pem(lambda keys: keys.ec_sns.pem), NotAuthentic, Reason.CERTIFICATE_KEY_UNSUPPORTED),
    Case("expired-certificate", lambda keys: post(signed(keys, signer=keys.expired), responses={CERT_URL: CertificateResponse(200, keys.expired.pem)}), NotAuthentic, Reason.CERTIFICATE_EXPIRED),
    Case("future-certificate", lambda keys: post(signed(keys, signer=keys.not_yet_valid), responses={CERT_URL: CertificateResponse(200, keys.not_yet_valid.pem)}), NotAuthentic, Reason.CERTIFICATE_NOT_YET_VALID),
    # Signature.
    Case("signature-version-3", replaced(SignatureVersion="3"), NotAuthentic, Reason.SIGNATURE_VERSION_UNSUPPORTED),
    Case("signature-version-empty", replaced(SignatureVersion=""), NotAuthentic, Reason.SIGNATURE_VERSION_UNSUPPORTED),
    Case("signed-by-another-key", lambda keys: post(signed(keys, signer=keys.attacker)), NotAuthentic, Reason.SIGNATURE_INVALID),
    # Not an SNS message.
    Case("not-json", raw("Type=Notification&Message=hello"), MalformedNotification, Reason.BODY_NOT_JSON),
    Case("json-array", raw('[{"Type": "Notification"}]'), MalformedNotification, Reason.BODY_NOT_OBJECT),
    Case("json-nan", raw('{"Type": NaN}'), MalformedNotification, Reason.BODY_NOT_JSON),
    Case("not-utf8", raw(b'{"Type": "Notification\xff"}'), MalformedNotification, Reason.BODY_NOT_UTF8),
    Case("oversized-body", raw(json.dumps({"Type": "Notification", "Message": "x" * 400_000})), MalformedNotification, Reason.BODY_TOO_LARGE),
    Case("duplicate-field", lambda keys: Attempt(forge.body(signed(keys))[:-1] + ', "TopicArn": "arn:aws:sns:us-east-1:123456789012:evil"}'), MalformedNotification, Reason.DUPLICATE_FIELD),
    Case("unknown-type", replaced(Type="Announcement"), MalformedNotification, Reason.MESSAGE_TYPE_UNKNOWN),
    Case("missing-signature", without("Signature"), MalformedNotification, Reason.FIELD_MISSING),
    Case("missing-cert-url", without("SigningCertURL"), MalformedNotification, Reason.FIELD_MISSING),
    Case("missing-message", without("Message"), MalformedNotification, Reason.FIELD_MISSING),
    Case("message-not-string", replaced(Message={"SellerId": SELLER}), MalformedNotification, Reason.FIELD_INVALID),
    Case("signature-not-base64", replaced(Signature="not base64!"), MalformedNotification, Reason.SIGNATURE_NOT_BASE64),
    Case("timestamp-not-iso", replaced(Timestamp="yesterday"), MalformedNotification, Reason.TIMESTAMP_INVALID),
    Case("timestamp-without-zone", replaced(Timestamp="2024-05-01T11:59:30.123"), MalformedNotification, Reason.TIMESTAMP_INVALID),
    # Headers.
    Case("type-header-differs", with_headers(**{"x-amz-sns-message-type": "SubscriptionConfirmation"}), NotAuthentic, Reason.HEADER_MISMATCH),
    Case("type-header-missing", with_headers(**{"x-amz-sns-message-type": ""}), NotAuthentic, Reason.HEADER_MISMATCH),
    Case("topic-header-differs", with_headers(**{"X-Amz-Sns-Topic-Arn": "arn:aws:sns:us-east-1:123456789012:x"}), NotAuthentic, Reason.HEADER_MISMATCH),
    Case("message-id-header-differs", with_headers(**{"x-amz-sns-message-id": "another"}), NotAuthentic, Reason.HEADER_MISMATCH),
    # Bound to this deployment.
    Case("other-topic", lambda keys: post(signed(keys, topic=TOPIC + "X")), NotAuthentic, Reason.TOPIC_NOT_ALLOWED),
    Case("own-topic-with-our-seller", lambda keys: post(signed(keys, topic="arn:aws:sns:us-east-1:123456789012:mine"), topics=frozenset()), NotAuthentic, Reason.TOPIC_NOT_ALLOWED),
    Case("other-seller", lambda keys: post(signed(keys, message=forge.ipn_message(seller_id="A2OTHER"))), NotAuthentic, Reason.SELLER_NOT_ALLOWED),
    Case("other-merchants-topic-in-amazon-pays-account", lambda keys: post(signed(keys, topic=OTHER_MERCHANT_TOPIC, message=forge.ipn_message(seller_id="A3OTHERMERCHANT")), topics=frozenset()), NotAuthentic, Reason.TOPIC_NOT_ALLOWED),
    Case("our-seller-on-another-merchants-topic", lambda keys: post(signed(keys, topic=OTHER_MERCHANT_TOPIC), topics=frozenset()), NotAuthentic, Reason.TOPIC_NOT_ALLOWED),
    Case("our-seller-on-another-of-our-sellers-topics", lambda keys: post(signed(keys, topic=SECOND_SELLER_TOPIC), topics=frozenset(), sellers=frozenset({SELLER, SECOND_SELLER})), NotAuthentic, Reason.SELLER_NOT_ALLOWED),
    Case("our-topic-in-the-china-partition", lambda keys: post(signed(keys, topic=TOPIC.replace("arn:aws:", "arn:aws-cn:")), topics=frozenset()), NotAuthentic, Reason.TOPIC_NOT_ALLOWED),
    Case("our-topic-in-govcloud", lambda keys: post(signed(keys, topic=TOPIC.replace("arn:aws:", "arn:aws-us-gov:")), topics=frozenset()), NotAuthentic, Reason.TOPIC_NOT_ALLOWED),
    Case("subscription-to-another-merchants-topic", other_merchants_subscription, NotAuthentic, Reason.TOPIC_NOT_ALLOWED),
    Case("subscribe-url-elsewhere", subscription(f"https://evil.example/?Action=ConfirmSubscription&TopicArn={TOPIC}"), NotAuthentic, Reason.SUBSCRIBE_URL_INVALID),
    Case("subscribe-url-userinfo", subscription(f"https://evil.example@{HOST}/?Action=ConfirmSubscription"), NotAuthentic, Reason.SUBSCRIBE_URL_INVALID),
    Case("subscribe-url-other-action", subscription(f"https://{HOST}/?Action=Unsubscribe&TopicArn={TOPIC}"), NotAuthentic, Reason.SUBSCRIBE_URL_INVALID),
    Case("subscribe-url-other-topic", subscription(f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}X"), NotAuthentic, Reason.SUBSCRIBE_URL_INVALID),
    # NotificationData.
    Case("xml-entity-expansion", notification_data(BILLION_LAUGHS), MalformedNotification, Reason.NOTIFICATION_XML_FORBIDDEN),
    Case("xml-external-entity", notification_data(EXTERNAL_ENTITY), MalformedNotification, Reason.NOTIFICATION_XML_FORBIDDEN),
    Case("xml-external-dtd", notification_data(EXTERNAL_DTD), MalformedNotification, Reason.NOTIFICATION_XML_FORBIDDEN),
    Case("xml-not-xml", notification_data("<RefundNotification>"), MalformedNotification, Reason.NOTIFICATION_XML_INVALID),
    Case("message-not-amazon-pay", lambda keys: post(signed(keys, message="Hello world")), MalformedNotification, Reason.NOTIFICATION_NOT_JSON),
    # Freshness.
    Case("replay-beyond-max-age", lambda keys: post(signed(keys), clock=NOW + timedelta(days=16)), NotAuthentic, Reason.MESSAGE_STALE),
    Case("from-the-future", lambda keys: post(signed(keys, timestamp="2024-05-01T12:10:00.000Z")), NotAuthentic, Reason.MESSAGE_FROM_FUTURE),
]  # fmt: skip


def attempt_verification(keys: Keys, case: Case) -> tuple[forge.SpyFetcher, SnsVerificationError | None]:
    attempt = case.build(keys)
    spy = forge.SpyFetcher({CERT_URL: CertificateResponse(200, keys.sns.pem), **attempt.responses})
    verifier = SnsVerifier(fetcher=spy, clock=lambda: attempt.clock)
    binding = DeploymentBinding(topic_arns=attempt.topics, seller_ids=attempt.sellers)
    try:
        verify_ipn(attempt.body, headers=attempt.headers, verifier=verifier, binding=binding)
    except SnsVerificationError as error:
        return spy, error
    return spy, None


def test_the_corpus_is_large_and_names_distinct_cases() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_post_is_refused_with_its_reason(keys: Keys, case: Case) -> None:
    _, error = attempt_verification(keys, case)

    assert isinstance(error, case.error)
    assert error.reason is case.reason


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_post_fetches_nothing_but_the_genuine_sns_certificate(keys: Keys, case: Case) -> None:
    spy, _ = attempt_verification(keys, case)

    assert set(spy.urls) <= {CERT_URL}
    refused_before_any_fetch = case.reason.value.startswith(("cert_url", "body", "field", "signature_not"))
    if refused_before_any_fetch:
        assert spy.urls == []


def test_the_same_post_signed_properly_is_accepted(keys: Keys) -> None:
    """The control for the corpus: its baseline message passes, so each case fails for its own change."""
    spy, error = attempt_verification(
        keys, Case("baseline", lambda k: post(signed(k)), NotAuthentic, Reason.SIGNATURE_INVALID)
    )

    assert error is None
    assert spy.urls == [CERT_URL]
