"""`refunds ipn verify`: exit codes and what it prints, on the real fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refunds_cli import ipn as ipn_command
from refunds_cli.main import main
from tests.conftest import FIXTURES

SNS = FIXTURES / "sns"
REFUND = SNS / "amazon-pay-refund-completed-eu-2017.json"
REFUND_CERTIFICATE = SNS / "SimpleNotificationService-b95095beb82e8f6a046b3aafc7f4149a.pem"
HELLO = SNS / "aws-sns-hello-sigv2-2022.json"
HELLO_CERTIFICATE = SNS / "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"


def at_message_time(path: Path) -> str:
    return str(json.loads(path.read_bytes())["Timestamp"])


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, url: str) -> object:
        raise AssertionError(f"the CLI tried to fetch {url}")

    monkeypatch.setattr(ipn_command.RequestsCertificateFetcher, "__call__", refuse)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["ipn", "verify", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_authentic_refund_ipn_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(
        capsys, str(REFUND), "--certificate", str(REFUND_CERTIFICATE), "--at", at_message_time(REFUND)
    )

    assert code == 0


def test_an_authentic_refund_ipn_prints_its_identity(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, str(REFUND), "--certificate", str(REFUND_CERTIFICATE), "--at", at_message_time(REFUND)
    )

    assert out.splitlines()[:3] == [
        "authentic: Notification",
        "message id: 17bf00c4-8bf8-5f70-9f25-51097f9450e5",
        "topic: arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T",
    ]
    assert "notification type: PaymentRefund" in out.splitlines()
    assert "seller: AOPZVV2STP28T" in out.splitlines()


@pytest.mark.parametrize("name", sorted(path.name for path in SNS.glob("*.json")))
def test_every_real_fixture_is_authentic_at_its_own_time(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = SNS / name
    certificate = SNS / json.loads(path.read_bytes())["SigningCertURL"].rsplit("/", 1)[1]

    code, _, _ = run(capsys, str(path), "--certificate", str(certificate), "--at", at_message_time(path))

    assert code == 0


def test_a_plain_sns_message_prints_no_amazon_pay_fields(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, str(HELLO), "--certificate", str(HELLO_CERTIFICATE), "--at", at_message_time(HELLO)
    )

    assert "notification type" not in out


def test_today_the_certificate_has_expired(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(REFUND), "--certificate", str(REFUND_CERTIFICATE))

    assert (code, err.split(":")[:2]) == (1, ["not authentic", " certificate_expired"])


def test_the_wrong_certificate_fails_the_signature(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, str(REFUND), "--certificate", str(HELLO_CERTIFICATE), "--at", "2022-01-01T00:00:00Z"
    )

    assert (code, "signature_invalid" in err) == (1, True)


def test_a_seller_other_than_the_ipns_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        str(REFUND),
        "--certificate",
        str(REFUND_CERTIFICATE),
        "--at",
        at_message_time(REFUND),
        "--seller",
        "A2OTHERSELLER",
    )

    assert (code, "seller_not_allowed" in err) == (1, True)


def test_the_ipns_own_topic_and_seller_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(
        capsys,
        str(REFUND),
        "--certificate",
        str(REFUND_CERTIFICATE),
        "--at",
        at_message_time(REFUND),
        "--topic",
        "arn:aws:sns:eu-west-1:291180941288:A1G8446IYHA4MRAOPZVV2STP28T",
        "--seller",
        "AOPZVV2STP28T",
    )

    assert code == 0


def test_another_topic_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        str(REFUND),
        "--certificate",
        str(REFUND_CERTIFICATE),
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

    def fetch(self: object, url: str) -> ipn_command.CertificateResponse:
        fetched.append(url)
        return ipn_command.CertificateResponse(200, REFUND_CERTIFICATE.read_bytes())

    monkeypatch.setattr(ipn_command.RequestsCertificateFetcher, "__call__", fetch)

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
