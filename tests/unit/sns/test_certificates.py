"""Certificate URL policy, strict PEM, the status rules, the cache, and the default requests fetcher."""

from __future__ import annotations

import botocore.session
import pytest
from cryptography.x509.oid import NameOID

from amazon_pay_refunds.adapters.sns import (
    CertificateCache,
    CertificateResponse,
    CertificateUnavailable,
    NotAuthentic,
    Reason,
    SnsVerifier,
    check_sns_certificate_url,
    check_sns_subscribe_url,
    load_strict_pem_certificate,
    parse_sns_message,
)
from amazon_pay_refunds.adapters.sns.certificates import (
    SNS_REGIONS,
    TrustedCertificate,
    certificate_from_response,
)
from tests.support import sns_forge as forge
from tests.support.sns_fixtures import RealFixture

HEX = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("region", sorted(SNS_REGIONS))
def test_every_commercial_regions_sns_certificate_url_is_allowed(region: str) -> None:
    check_sns_certificate_url(f"https://sns.{region}.amazonaws.com/SimpleNotificationService-{HEX}.pem")


def test_the_region_list_names_only_commercial_regions_botocore_knows_for_sns() -> None:
    """A made-up or non-commercial region fails here. A region AWS adds later (a newer botocore) is not a
    failure: Amazon Pay's IPN topics live in a few long-standing regions; CI installs the newest botocore."""
    known = set(botocore.session.get_session().get_available_regions("sns", partition_name="aws"))

    assert set(SNS_REGIONS) <= known, sorted(set(SNS_REGIONS) - known)
    assert len(SNS_REGIONS) >= 34  # as of this writing: no list shrank to let a test pass


@pytest.mark.parametrize(
    "host",
    [
        "sns.zz-nowhere-9.amazonaws.com",  # shaped like a region, but none
        "sns.us-east-99.amazonaws.com",
        "sns.us-gov-west-1.amazonaws.com",  # GovCloud: no Amazon Pay IPN comes from there
        "sns.us-gov-east-1.amazonaws.com",
        "sns.cn-north-1.amazonaws.com.cn",  # China: neither
        "sns.cn-northwest-1.amazonaws.com.cn",
        "sns.cn-north-1.amazonaws.com",
        "sns.eusc-de-east-1.amazonaws.eu",  # the European Sovereign Cloud partition
        "sns.us-isob-east-1.sc2s.sgov.gov",
    ],
)
def test_hosts_outside_the_commercial_regions_are_refused(host: str) -> None:
    with pytest.raises(NotAuthentic) as refused:
        check_sns_certificate_url(f"https://{host}/SimpleNotificationService-{HEX}.pem")

    assert refused.value.reason is Reason.CERT_URL_HOST


def test_the_real_fixtures_certificate_urls_are_allowed(real_fixtures: list[RealFixture]) -> None:
    for fixture in real_fixtures:
        check_sns_certificate_url(fixture.cert_url)


def test_every_real_certificate_passes_the_strict_pem_reader(real_fixtures: list[RealFixture]) -> None:
    subjects = {load_strict_pem_certificate(fixture.certificate_pem).subject for fixture in real_fixtures}

    assert all(
        [name.value for name in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["sns.amazonaws.com"]
        for subject in subjects
    )


def test_a_pem_with_crlf_line_endings_is_accepted(sns_identity: forge.Identity) -> None:
    certificate = load_strict_pem_certificate(sns_identity.pem.replace(b"\n", b"\r\n"))

    assert certificate == sns_identity.certificate


def test_a_pem_block_of_another_kind_is_refused(sns_identity: forge.Identity) -> None:
    public_key = sns_identity.pem.replace(b"CERTIFICATE", b"PUBLIC KEY")

    with pytest.raises(NotAuthentic) as refused:
        load_strict_pem_certificate(public_key)

    assert refused.value.reason is Reason.CERTIFICATE_NOT_PEM


def test_a_server_error_is_transient() -> None:
    with pytest.raises(CertificateUnavailable) as unavailable:
        certificate_from_response(CertificateResponse(503, b""))

    assert unavailable.value.reason is Reason.CERTIFICATE_FETCH_FAILED
    assert unavailable.value.http_status == 503


def test_throttling_is_transient() -> None:
    with pytest.raises(CertificateUnavailable):
        certificate_from_response(CertificateResponse(429, b""))


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A291180941288%3Ax&Token=tok",
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:291180941288:x&Token=tok",
    ],
)
def test_a_genuine_subscribe_url_is_allowed(url: str) -> None:
    check_sns_subscribe_url(url, topic_arn="arn:aws:sns:us-east-1:291180941288:x", token="tok")


def test_a_subscribe_url_with_another_token_is_refused() -> None:
    url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=other"

    with pytest.raises(NotAuthentic) as refused:
        check_sns_subscribe_url(url, topic_arn="arn:aws:sns:us-east-1:291180941288:x", token="tok")

    assert refused.value.reason is Reason.SUBSCRIBE_URL_INVALID


def _verifier_for(
    fixture: RealFixture, spy: forge.SpyFetcher, cache: CertificateCache | None = None
) -> SnsVerifier:
    moment = parse_sns_message(fixture.body).timestamp
    return SnsVerifier(fetcher=spy, cache=cache, clock=lambda: moment, max_age=None)


def test_the_cache_fetches_each_certificate_url_once(real_fixtures: list[RealFixture]) -> None:
    hello = [fixture for fixture in real_fixtures if fixture.name.startswith("aws-sns-hello")]
    spy = forge.SpyFetcher({hello[0].cert_url: CertificateResponse(200, hello[0].certificate_pem)})
    cache = CertificateCache()
    for fixture in hello * 3:
        _verifier_for(fixture, spy, cache).verify(fixture.body, headers=None)

    assert spy.urls == [hello[0].cert_url]


def test_one_verifier_keeps_its_certificates_warm(real_fixtures: list[RealFixture]) -> None:
    fixture = real_fixtures[0]
    spy = forge.SpyFetcher({fixture.cert_url: CertificateResponse(200, fixture.certificate_pem)})
    verifier = _verifier_for(fixture, spy)
    for _ in range(5):
        verifier.verify(fixture.body, headers=None)

    assert len(spy.urls) == 1


def test_a_failed_fetch_is_not_cached(real_fixtures: list[RealFixture]) -> None:
    fixture = real_fixtures[0]
    spy = forge.SpyFetcher({fixture.cert_url: CertificateResponse(503, b"")})
    verifier = _verifier_for(fixture, spy)
    with pytest.raises(CertificateUnavailable):
        verifier.verify(fixture.body, headers=None)
    spy.responses[fixture.cert_url] = CertificateResponse(200, fixture.certificate_pem)

    verifier.verify(fixture.body, headers=None)

    assert len(spy.urls) == 2


def test_the_cache_keeps_at_most_its_bound_evicting_the_least_recently_used(
    sns_identity: forge.Identity,
) -> None:
    cache = CertificateCache(max_entries=2)
    entry = TrustedCertificate.from_certificate(sns_identity.certificate)
    cache.put("a", entry)
    cache.put("b", entry)
    cache.get("a")
    cache.put("c", entry)

    assert ("a" in cache, "b" in cache, "c" in cache, len(cache)) == (True, False, True, 2)
