"""The local certificate authority: accepts what it issued under its own URL prefix, and never in Lambda."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from amazon_pay_refunds.adapters.sns import (
    CertificateResponse,
    LocalAuthorityTrust,
    NotAuthentic,
    Reason,
    SnsCertificateTrust,
    SnsVerifier,
    trust_from_environment,
)
from amazon_pay_refunds.config import ConfigurationError
from tests.support import sns_forge as forge
from tests.support.sns_forge import NOW

PREFIX = "http://127.0.0.1:8701/sns/"
LOCAL_URL = f"{PREFIX}SimpleNotificationService-local.pem"


@dataclass(frozen=True)
class LocalAuthority:
    ca: forge.Identity
    signer: forge.Identity
    stranger: forge.Identity


@pytest.fixture(scope="module")
def authority(attacker_identity: forge.Identity) -> LocalAuthority:
    ca = forge.make_identity("Local SNS test CA", is_ca=True)
    signer = forge.make_identity("sns.local", issuer=ca)
    # Same issuer name as the CA, but signed by another key: a forged "child" of the local CA.
    impostor_ca = forge.Identity(attacker_identity.key, ca.certificate)
    stranger = forge.make_identity("sns.local", issuer=impostor_ca)
    return LocalAuthority(ca, signer, stranger)


def local_verifier(authority: LocalAuthority, served: forge.Identity) -> tuple[SnsVerifier, forge.SpyFetcher]:
    spy = forge.SpyFetcher({LOCAL_URL: CertificateResponse(200, served.pem)})
    trust = LocalAuthorityTrust(authority.ca.pem, PREFIX)
    return SnsVerifier(trust, fetcher=spy, clock=lambda: NOW), spy


def test_a_message_signed_by_a_certificate_of_the_local_ca_verifies(authority: LocalAuthority) -> None:
    verifier, spy = local_verifier(authority, authority.signer)
    document = forge.envelope(authority.signer, cert_url=LOCAL_URL)

    message = verifier.verify(forge.body(document), headers=forge.headers_for(document))

    assert message.message_id == document["MessageId"]
    assert spy.urls == [LOCAL_URL]


def test_a_certificate_not_issued_by_the_local_ca_is_refused(authority: LocalAuthority) -> None:
    verifier, _ = local_verifier(authority, authority.stranger)
    document = forge.envelope(authority.stranger, cert_url=LOCAL_URL)

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(forge.body(document), headers=None)

    assert refused.value.reason is Reason.CERTIFICATE_UNTRUSTED


def test_a_self_signed_sns_subject_is_refused_by_the_local_trust(
    authority: LocalAuthority, sns_identity: forge.Identity
) -> None:
    verifier, _ = local_verifier(authority, sns_identity)
    document = forge.envelope(sns_identity, cert_url=LOCAL_URL)

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(forge.body(document), headers=None)

    assert refused.value.reason is Reason.CERTIFICATE_UNTRUSTED


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (forge.CERT_URL, Reason.CERT_URL_HOST),
        ("http://127.0.0.1:8702/sns/SimpleNotificationService-local.pem", Reason.CERT_URL_HOST),
        ("http://127.0.0.1:8701/snsx/SimpleNotificationService-local.pem", Reason.CERT_URL_HOST),
        (f"{PREFIX}../secret.pem", Reason.CERT_URL_PATH),
        (f"{PREFIX}sub/cert.pem", Reason.CERT_URL_PATH),
        (f"{PREFIX}cert.pem?x=1", Reason.CERT_URL_QUERY),
        (f"{PREFIX}%2e%2e/cert.pem", Reason.CERT_URL_ENCODING),
    ],
)
def test_the_local_trust_fetches_nothing_outside_its_prefix(
    authority: LocalAuthority, url: str, reason: Reason
) -> None:
    verifier, spy = local_verifier(authority, authority.signer)
    document = forge.envelope(authority.signer, cert_url=url)

    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(forge.body(document), headers=None)

    assert (refused.value.reason, spy.urls) == (reason, [])


def test_a_local_prefix_must_end_with_a_slash(authority: LocalAuthority) -> None:
    with pytest.raises(ValueError, match="prefix"):
        LocalAuthorityTrust(authority.ca.pem, "http://127.0.0.1:8701")


def test_without_local_variables_the_trust_is_sns() -> None:
    assert isinstance(trust_from_environment({}), SnsCertificateTrust)


def test_local_variables_outside_lambda_give_the_local_trust(authority: LocalAuthority) -> None:
    environ = {
        "REFUNDS_LOCAL_SNS_CA_PEM": authority.ca.pem.decode(),
        "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX": PREFIX,
    }

    trust = trust_from_environment(environ)

    assert isinstance(trust, LocalAuthorityTrust)
    assert trust.allowed_url_prefix == PREFIX


def test_the_local_ca_may_be_given_as_a_file(authority: LocalAuthority, tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(authority.ca.pem)
    environ = {"REFUNDS_LOCAL_SNS_CA_PEM": str(path), "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX": PREFIX}

    assert isinstance(trust_from_environment(environ), LocalAuthorityTrust)


@pytest.mark.parametrize(
    "lambda_variable",
    [{"AWS_LAMBDA_FUNCTION_NAME": "IpnHandler"}, {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"}],
)
def test_local_trust_is_refused_inside_aws_lambda(
    authority: LocalAuthority, lambda_variable: dict[str, str]
) -> None:
    environ = {
        "REFUNDS_LOCAL_SNS_CA_PEM": authority.ca.pem.decode(),
        "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX": PREFIX,
        **lambda_variable,
    }

    with pytest.raises(ConfigurationError, match="refused in AWS Lambda"):
        trust_from_environment(environ)


def test_half_a_local_configuration_is_refused(authority: LocalAuthority) -> None:
    with pytest.raises(ConfigurationError, match="together"):
        trust_from_environment({"REFUNDS_LOCAL_SNS_CERT_URL_PREFIX": PREFIX})


def test_the_process_environment_is_read_by_default(
    monkeypatch: pytest.MonkeyPatch, authority: LocalAuthority
) -> None:
    monkeypatch.setenv("REFUNDS_LOCAL_SNS_CA_PEM", authority.ca.pem.decode())
    monkeypatch.setenv("REFUNDS_LOCAL_SNS_CERT_URL_PREFIX", PREFIX)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "IpnHandler")

    with pytest.raises(ConfigurationError):
        trust_from_environment()
