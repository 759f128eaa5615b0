"""`refunds ipn verify`: exit codes and what it prints, on the real fixtures."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from amazon_pay_refunds.adapters.sns import CertificateResponse, system_trust_roots
from amazon_pay_refunds.adapters.sns.certificates import RequestsCertificateFetcher
from refunds_cli.main import main
from tests.support import sns_forge as forge
from tests.support.paths import FIXTURES, REPO
from tests.support.sns_forge import Identity

SNS = FIXTURES / "sns"
REFUND = SNS / "amazon-pay-refund-completed-eu-2017.json"
REFUND_CERTIFICATE = SNS / "SimpleNotificationService-b95095beb82e8f6a046b3aafc7f4149a.pem"
HELLO = SNS / "aws-sns-hello-sigv2-2022.json"
HELLO_CERTIFICATE = SNS / "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
# Amazon Server CA 1B, the issuer of HELLO_CERTIFICATE (SNS serves the leaf alone).
INTERMEDIATES = REPO / "tests" / "fixtures" / "intermediates" / "amazon-server-ca-1b.pem"


def at_message_time(path: Path) -> str:
    return str(json.loads(path.read_bytes())["Timestamp"])


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, url: str) -> object:
        raise AssertionError(f"the CLI tried to fetch {url}")

    monkeypatch.setattr(RequestsCertificateFetcher, "__call__", refuse)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["ipn", "verify", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def served_as_genuine(monkeypatch: pytest.MonkeyPatch, certificate: Path) -> list[str]:
    """The SigningCertURL answers `certificate` over (verified) TLS: the path without --certificate."""
    fetched: list[str] = []

    def fetch(self: object, url: str) -> CertificateResponse:
        fetched.append(url)
        return CertificateResponse(200, certificate.read_bytes())

    monkeypatch.setattr(RequestsCertificateFetcher, "__call__", fetch)
    return fetched


@pytest.fixture
def genuine_refund_certificate(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return served_as_genuine(monkeypatch, REFUND_CERTIFICATE)


def test_an_authentic_refund_ipn_exits_0(
    capsys: pytest.CaptureFixture[str], genuine_refund_certificate: list[str]
) -> None:
    code, _, _ = run(capsys, str(REFUND), "--at", at_message_time(REFUND))

    assert code == 0


def test_an_authentic_refund_ipn_prints_its_identity(
    capsys: pytest.CaptureFixture[str], genuine_refund_certificate: list[str]
) -> None:
    _, out, _ = run(capsys, str(REFUND), "--at", at_message_time(REFUND))

    assert out.splitlines()[:3] == [
        "authentic: Notification",
        "message id: 17bf00c4-8bf8-5f70-9f25-51097f9450e5",
        "topic: arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T",
    ]
    assert "notification type: PaymentRefund" in out.splitlines()
    assert "seller: AOPZVV2STP28T" in out.splitlines()


@pytest.mark.parametrize("name", sorted(path.name for path in SNS.glob("*.json")))
def test_every_real_fixture_is_authentic_at_its_own_time_from_its_genuine_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = SNS / name
    served_as_genuine(monkeypatch, SNS / json.loads(path.read_bytes())["SigningCertURL"].rsplit("/", 1)[1])

    code, _, _ = run(capsys, str(path), "--at", at_message_time(path))

    assert code == 0


@pytest.mark.parametrize("name", sorted(path.name for path in SNS.glob("aws-sns-hello-*.json")))
def test_every_real_2022_fixture_is_authentic_with_its_certificate_and_intermediate(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = SNS / name
    certificate = SNS / json.loads(path.read_bytes())["SigningCertURL"].rsplit("/", 1)[1]

    code, _, _ = run(
        capsys, str(path), "--certificate", str(certificate), "--intermediates", str(INTERMEDIATES),
        "--at", at_message_time(path),
    )  # fmt: skip

    assert code == 0


def test_a_plain_sns_message_prints_no_amazon_pay_fields(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, str(HELLO), "--certificate", str(HELLO_CERTIFICATE), "--intermediates", str(INTERMEDIATES),
        "--at", at_message_time(HELLO),
    )  # fmt: skip

    assert "notification type" not in out


def test_today_the_certificate_has_expired(
    capsys: pytest.CaptureFixture[str], genuine_refund_certificate: list[str]
) -> None:
    code, _, err = run(capsys, str(REFUND))

    assert (code, err.split(":")[:2]) == (1, ["not authentic", " certificate_expired"])


def test_the_wrong_certificate_fails_the_signature(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, str(REFUND), "--certificate", str(HELLO_CERTIFICATE), "--intermediates", str(INTERMEDIATES),
        "--at", "2022-01-01T00:00:00Z",
    )  # fmt: skip

    assert (code, "signature_invalid" in err) == (1, True)


def test_a_seller_other_than_the_ipns_is_refused(
    capsys: pytest.CaptureFixture[str], genuine_refund_certificate: list[str]
) -> None:
    code, _, err = run(
        capsys,
        str(REFUND),
        "--at",
        at_message_time(REFUND),
        "--topic",
        "arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T",
        "--seller",
        "A2OTHERSELLER",
    )

    assert (code, "seller_not_allowed" in err) == (1, True)


def test_with_sellers_alone_the_topic_must_be_one_of_theirs(
    capsys: pytest.CaptureFixture[str], genuine_refund_certificate: list[str]
) -> None:
    other = run(capsys, str(REFUND), "--at", at_message_time(REFUND), "--seller", "A2OTHERSELLER")
    own = run(capsys, str(REFUND), "--at", at_message_time(REFUND), "--seller", "AOPZVV2STP28T")

    assert (other[0], "topic_not_allowed" in other[2]) == (1, True)
    assert own[0] == 0


def test_a_topic_outside_the_aws_partition_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], genuine_refund_certificate: list[str]
) -> None:
    code, _, err = run(
        capsys, str(REFUND), "--topic", "arn:aws-cn:sns:cn-north-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T"
    )

    assert (code, "aws partition" in err) == (2, True)


def test_the_ipns_own_topic_and_seller_are_accepted(
    capsys: pytest.CaptureFixture[str], genuine_refund_certificate: list[str]
) -> None:
    code, _, _ = run(
        capsys,
        str(REFUND),
        "--at",
        at_message_time(REFUND),
        "--topic",
        "arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T",
        "--seller",
        "AOPZVV2STP28T",
    )

    assert code == 0


def test_another_topic_is_refused(
    capsys: pytest.CaptureFixture[str], genuine_refund_certificate: list[str]
) -> None:
    code, _, err = run(
        capsys,
        str(REFUND),
        "--at",
        at_message_time(REFUND),
        "--topic",
        "arn:aws:sns:eu-west-1:291180941288:SOMEONEELSE",
    )

    assert (code, "topic_not_allowed" in err) == (1, True)


def test_a_hostile_certificate_url_is_refused_even_with_a_certificate_supplied(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = json.loads(REFUND.read_bytes())
    document["SigningCertURL"] = (
        "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-b9.pem"
    )
    stored = tmp_path / "ipn.json"
    stored.write_text(json.dumps(document))

    code, _, err = run(
        capsys, str(stored), "--certificate", str(REFUND_CERTIFICATE), "--at", at_message_time(REFUND)
    )

    assert (code, "cert_url_host" in err) == (1, True)


def test_a_wrapped_certificate_file_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wrapped = tmp_path / "cert.pem"
    wrapped.write_bytes(b"attacker text\n" + REFUND_CERTIFICATE.read_bytes())

    code, _, err = run(capsys, str(REFUND), "--certificate", str(wrapped), "--at", at_message_time(REFUND))

    assert (code, "certificate_not_pem" in err) == (1, True)


def test_a_file_that_is_not_json_is_malformed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stored = tmp_path / "ipn.json"
    stored.write_text("not json")

    code, _, err = run(capsys, str(stored), "--certificate", str(REFUND_CERTIFICATE))

    assert (code, err.split(":")[:2]) == (1, ["malformed", " body_not_json"])


def test_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path / "absent.json"))

    assert (code, "cannot read" in err) == (2, True)


def test_without_a_certificate_only_the_genuine_sns_url_would_be_fetched(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []

    def fetch(self: object, url: str) -> CertificateResponse:
        fetched.append(url)
        return CertificateResponse(200, REFUND_CERTIFICATE.read_bytes())

    monkeypatch.setattr(RequestsCertificateFetcher, "__call__", fetch)

    code, _, _ = run(capsys, str(REFUND), "--at", at_message_time(REFUND))

    assert (code, fetched) == (0, [json.loads(REFUND.read_bytes())["SigningCertURL"]])


def test_a_bad_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["ipn", "verify", str(REFUND), "--at", "yesterday"])

    assert exited.value.code == 2


def test_the_command_line_requires_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])

    assert exited.value.code == 2


# --- --certificate: the supplied file must chain to the public CAs of the system trust store ------------


# KeyUsage(digital_signature, content_commitment, key_encipherment, data_encipherment, key_agreement,
#          key_cert_sign, crl_sign, encipher_only, decipher_only)
CA_KEY_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
SERVER_KEY_USAGE = x509.KeyUsage(True, False, True, False, False, False, False, False, False)


def web_pki_chain() -> tuple[Identity, Identity]:
    """A root CA and an sns.amazonaws.com server certificate it issued, with every extension a public TLS
    chain carries: only the trust store can tell it from Amazon's."""
    root_key, leaf_key = forge.rsa_key(), forge.rsa_key()
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Root CA")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    not_before, not_after = forge.NOW - timedelta(days=30), forge.NOW + timedelta(days=300)
    root = (
        x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(leaf_name).issuer_name(root_name)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(SERVER_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("sns.amazonaws.com")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    return Identity(root_key, root), Identity(leaf_key, leaf)


def forged_ipn(tmp_path: Path, signer: Identity) -> tuple[Path, Path]:
    """An IPN of our seller signed by `signer`, and its certificate as the --certificate file."""
    stored, certificate = tmp_path / "ipn.json", tmp_path / "certificate.pem"
    stored.write_text(forge.body(forge.envelope(signer)))
    certificate.write_bytes(signer.pem)
    return stored, certificate


def test_a_forged_ipn_with_a_self_signed_sns_certificate_is_not_verified(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stored, certificate = forged_ipn(tmp_path, forge.make_identity("sns.amazonaws.com"))

    code, out, err = run(capsys, str(stored), "--certificate", str(certificate), "--at", forge.TIMESTAMP)

    assert (code, out) == (1, "")
    assert "origin could not be verified" in err


def test_a_forged_ipn_whose_certificate_a_private_ca_issued_is_not_verified_with_that_ca_supplied(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    authority, leaf = web_pki_chain()
    stored, certificate = forged_ipn(tmp_path, leaf)
    (tmp_path / "ca.pem").write_bytes(authority.pem)

    code, _, err = run(
        capsys, str(stored), "--certificate", str(certificate), "--intermediates", str(tmp_path / "ca.pem"),
        "--at", forge.TIMESTAMP,
    )  # fmt: skip

    assert (code, "origin could not be verified" in err) == (1, True)


def test_a_real_sns_certificate_with_its_intermediate_is_authentic_at_the_messages_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, str(HELLO), "--certificate", str(HELLO_CERTIFICATE), "--intermediates", str(INTERMEDIATES),
        "--at", at_message_time(HELLO),
    )  # fmt: skip

    assert (code, out.splitlines()[0]) == (0, "authentic: Notification")


def test_a_real_sns_certificate_without_its_intermediate_names_where_to_get_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(
        capsys, str(HELLO), "--certificate", str(HELLO_CERTIFICATE), "--at", at_message_time(HELLO)
    )

    assert (code, "origin could not be verified" in err) == (1, True)
    assert "--intermediates" in err
    assert "http://crt.sca1b.amazontrust.com/sca1b.crt" in err


def test_a_real_chain_outside_its_validity_is_not_verified(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, str(HELLO), "--certificate", str(HELLO_CERTIFICATE), "--intermediates", str(INTERMEDIATES),
        "--at", "2026-01-01T00:00:00Z",
    )  # fmt: skip

    assert code == 1
    assert "certificate_expired" in err or "origin could not be verified" in err


@pytest.mark.parametrize(
    "name", [REFUND_CERTIFICATE.name, "SimpleNotificationService-d6d679a1d18e95c2f9ffcf11f4f9e198.pem"]
)
def test_certificates_of_the_distrusted_symantec_and_verisign_cas_cannot_be_verified_today(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = next(p for p in SNS.glob("*.json") if json.loads(p.read_bytes())["SigningCertURL"].endswith(name))

    code, _, err = run(capsys, str(path), "--certificate", str(SNS / name), "--at", at_message_time(path))

    assert (code, "origin could not be verified" in err) == (1, True)


def test_the_intermediate_fixture_is_proven_by_signatures_not_trusted() -> None:
    """The leaf's signature verifies under the intermediate, and it under Amazon Root CA 1 of the store."""
    leaf = x509.load_pem_x509_certificate(HELLO_CERTIFICATE.read_bytes())
    (intermediate,) = x509.load_pem_x509_certificates(INTERMEDIATES.read_bytes())
    leaf.verify_directly_issued_by(intermediate)
    roots = [r for r in system_trust_roots() if r.subject == intermediate.issuer]
    assert len(roots) == 1
    intermediate.verify_directly_issued_by(roots[0])


def test_the_trust_store_decides_and_ssl_cert_file_overrides_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the forgery tests: a chain to a root of the store passes, whoever made the root."""
    authority, leaf = web_pki_chain()
    stored, certificate = forged_ipn(tmp_path, leaf)
    (tmp_path / "roots.pem").write_bytes(authority.pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "roots.pem"))

    code, _, err = run(capsys, str(stored), "--certificate", str(certificate), "--at", forge.TIMESTAMP)

    assert [root.subject for root in system_trust_roots()] == [authority.certificate.subject]
    assert (code, err) == (0, "")


def test_intermediates_without_a_certificate_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(HELLO), "--intermediates", str(INTERMEDIATES))

    assert (code, "--intermediates only goes with --certificate" in err) == (2, True)


def test_a_forged_certificates_issuer_url_reaches_the_terminal_only_when_plain(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = forge.rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    issuers = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier("http://x/\x1b[2J")
            )
        ]
    )
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(forge.NOW - timedelta(days=1))
        .not_valid_after(forge.NOW + timedelta(days=1)).add_extension(issuers, critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    stored, pem = forged_ipn(tmp_path, Identity(key, certificate))

    code, _, err = run(capsys, str(stored), "--certificate", str(pem), "--at", forge.TIMESTAMP)

    assert (code, "origin could not be verified" in err) == (1, True)
    assert "\x1b" not in err and "hint:" not in err
