"""The local certificate authority, and IPN rendering/signing without HTTP."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from amazon_pay_refunds.adapters.sns import parse_sns_message, string_to_sign, trust_from_environment
from amazon_pay_refunds.adapters.sns.trust import LocalAuthorityTrust
from amazon_pay_sim.authority import CA_CERTIFICATE_FILE, CA_KEY_FILE, SIGNING_KEY_FILE, LocalAuthority
from amazon_pay_sim.ipn import IPN_REGIONS, IpnNotification, amazon_pay_message, sns_envelope, topic_arn
from tests.support.paths import FIXTURES

FIXTURE = FIXTURES / "sns" / "amazon-pay-refund-completed-eu-2017.json"


@pytest.fixture(scope="module")
def authority() -> LocalAuthority:
    return LocalAuthority.create()


def notification(
    version: str, data: str = "<RefundNotification><a>x</a></RefundNotification>"
) -> IpnNotification:
    region = IPN_REGIONS["eu"]
    message = amazon_pay_message(
        region=region,
        seller_id="AOPZVV2STP28T",
        notification_reference_id="f021fa22-bc5f-48d6-a5fa-91e1272eec51",
        timestamp="2017-06-28T18:15:08.001Z",
        notification_data=data,
    )
    return IpnNotification(
        message_id="17bf00c4-8bf8-5f70-9f25-51097f9450e5",
        notification_reference_id="f021fa22-bc5f-48d6-a5fa-91e1272eec51",
        topic_arn=topic_arn(region, "AOPZVV2STP28T"),
        message=message,
        timestamp="2017-06-28T18:15:08.017Z",
        signature_version=version,
        seller_id="AOPZVV2STP28T",
        amazon_refund_id="S02-8274313-3487267-R019346",
        refund_reference_id="aed9ba8bee564c8cb943bd6481633ad1",
        state="Completed",
        reason_code=None,
    )


def test_the_topic_and_message_are_named_like_the_real_eu_ipn() -> None:
    real = json.loads(FIXTURE.read_text())
    real_message = json.loads(real["Message"])
    ours = notification("1", real_message["NotificationData"])
    assert ours.topic_arn == real["TopicArn"]
    assert json.loads(ours.message) == real_message


def test_the_message_escapes_closing_tags_as_amazon_does() -> None:
    real = json.loads(FIXTURE.read_text())["Message"]
    ours = notification("1", json.loads(real)["NotificationData"]).message
    assert ours == real


@pytest.mark.parametrize(
    ("version", "algorithm", "other"), [("1", hashes.SHA1, hashes.SHA256), ("2", hashes.SHA256, hashes.SHA1)]
)
def test_the_envelope_is_signed_over_snss_string_to_sign(
    authority: LocalAuthority,
    version: str,
    algorithm: type[hashes.HashAlgorithm],
    other: type[hashes.HashAlgorithm],
) -> None:
    body = sns_envelope(
        notification(version), authority=authority, base_url="http://127.0.0.1:9", subscription_id="s"
    )
    message = parse_sns_message(body)
    key = authority.signing_certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(message.signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    with pytest.raises(InvalidSignature):
        key.verify(message.signature, string_to_sign(message), padding.PKCS1v15(), other())
    assert message.signing_cert_url == f"http://127.0.0.1:9/{authority.certificate_name}"


def test_the_signing_certificate_is_snss_subject_issued_by_the_ca(authority: LocalAuthority) -> None:
    from cryptography.x509.oid import NameOID

    authority.signing_certificate.verify_directly_issued_by(authority.ca_certificate)
    names = authority.signing_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [n.value for n in names] == ["sns.amazonaws.com"]
    assert authority.signing_certificate.public_key().key_size == 2048  # type: ignore[union-attr]
    LocalAuthorityTrust(authority.ca_certificate_pem, "http://127.0.0.1:9/").check_certificate(
        authority.signing_certificate
    )


def test_a_persisted_authority_is_shared_and_its_keys_are_private(tmp_path: Path) -> None:
    first = LocalAuthority.load_or_create(tmp_path / "ca")
    second = LocalAuthority.load_or_create(tmp_path / "ca")
    assert second.ca_certificate_pem == first.ca_certificate_pem
    assert second.certificate_name == first.certificate_name
    for name in (CA_KEY_FILE, SIGNING_KEY_FILE):
        assert stat.S_IMODE((tmp_path / "ca" / name).stat().st_mode) == 0o600
    assert (tmp_path / "ca" / CA_CERTIFICATE_FILE).read_text() == first.ca_certificate_pem


def test_the_persisted_ca_works_through_the_environment_variables(tmp_path: Path) -> None:
    authority = LocalAuthority.load_or_create(tmp_path)
    trust = trust_from_environment(
        {
            "REFUNDS_LOCAL_SNS_CA_PEM": str(tmp_path / CA_CERTIFICATE_FILE),
            "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX": "http://127.0.0.1:8701/",
        }
    )
    trust.check_certificate(authority.signing_certificate)


def test_an_incomplete_ca_directory_is_refused(tmp_path: Path) -> None:
    LocalAuthority.load_or_create(tmp_path)
    (tmp_path / SIGNING_KEY_FILE).unlink()
    with pytest.raises(ValueError, match="incomplete"):
        LocalAuthority.load_or_create(tmp_path)


def test_a_persisted_authority_near_expiry_is_renewed(tmp_path: Path) -> None:
    old = LocalAuthority.load_or_create(tmp_path, now=datetime(2015, 1, 1, tzinfo=UTC))
    renewed = LocalAuthority.load_or_create(tmp_path)
    assert renewed.ca_certificate_pem != old.ca_certificate_pem
    assert renewed.signing_certificate.not_valid_after_utc > datetime.now(UTC)
