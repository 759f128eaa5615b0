"""`refunds ipn verify FILE`: check a stored IPN offline with every URL and certificate rule applied.

Without `--certificate` the genuine SNS certificate URL is fetched over verified TLS (and nothing else can
be). With it, the file stands for what the SigningCertURL would return and nothing is fetched at all; since
no TLS connection to SNS vouches for that file, it must chain to a public certificate authority of the
system trust store (`SSL_CERT_FILE` overrides it), through the intermediate certificates given with
`--intermediates` (SNS serves its certificate alone; the certificate names where its issuer's can be
downloaded). No freshness limit applies (stored IPNs are old by nature), but `--at` sets the clock for the
validity of every certificate of the chain.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from amazon_pay_refunds.adapters.sns import (
    CertificateFetcher,
    CertificateResponse,
    CertificateTrust,
    DeploymentBinding,
    MessageType,
    PublicAuthorityTrust,
    Reason,
    RequestsCertificateFetcher,
    SnsVerificationError,
    SnsVerifier,
    VerifiedIpn,
    load_strict_pem_certificate,
    notification_xml,
    parse_notification,
    system_trust_roots,
    verify_ipn,
)

# Only a plain http(s) URL of printable ASCII from a certificate (not yet trusted) is shown to the operator.
_PRINTABLE_URL = re.compile(r"https?://[!-~]{1,500}")
EXIT_AUTHENTIC = 0
EXIT_NOT_AUTHENTIC = 1
EXIT_USAGE = 2


def register(subcommands: Any) -> None:
    ipn = subcommands.add_parser("ipn", help="Amazon Pay IPNs (SNS messages)")
    actions = ipn.add_subparsers(dest="ipn_command", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        help="verify a stored IPN (the SNS JSON body) offline",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    verify.add_argument("file", type=Path, metavar="FILE", help="the SNS HTTP body, as JSON")
    verify.add_argument(
        "--certificate", type=Path, metavar="PEM", help="what the SigningCertURL returns (no fetch then)"
    )
    verify.add_argument(
        "--intermediates",
        type=Path,
        metavar="FILE",
        help="intermediate CA certificates (PEM, one or more, or DER) to chain --certificate to a public CA",
    )
    verify.add_argument(
        "--at", type=_moment, metavar="ISO-TIME", help="the clock (default: now; naive = UTC)"
    )
    verify.add_argument("--topic", action="append", default=[], metavar="ARN", help="an allowed topic ARN")
    verify.add_argument("--seller", action="append", default=[], metavar="ID", help="an allowed SellerId")
    verify.set_defaults(handler=run_verify)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _SuppliedCertificate:
    """Answers every (already policy-checked) certificate URL with the operator's PEM file."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __call__(self, url: str) -> CertificateResponse:
        return CertificateResponse(200, self._body)


def _usage_error(message: str) -> int:
    print(f"refunds ipn verify: {message}", file=sys.stderr)
    return EXIT_USAGE


def _read_certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def run_verify(args: argparse.Namespace) -> int:
    if args.intermediates is not None and args.certificate is None:
        return _usage_error("--intermediates only goes with --certificate")
    at: datetime = args.at or datetime.now(UTC)
    trust: CertificateTrust | None = None
    certificate: bytes | None = None
    try:
        body = args.file.read_bytes()
        if args.certificate is not None:
            certificate = args.certificate.read_bytes()
            intermediates = [] if args.intermediates is None else _read_certificates(args.intermediates)
            trust = PublicAuthorityTrust(system_trust_roots(), intermediates, at)
    except OSError as error:
        return _usage_error(f"cannot read {error.filename}: {error.strerror}")
    except ValueError as error:
        return _usage_error(f"unusable certificates: {error}")
    fetcher: CertificateFetcher = (
        _SuppliedCertificate(certificate) if certificate is not None else RequestsCertificateFetcher()
    )
    verifier = SnsVerifier(trust, fetcher=fetcher, clock=lambda: at, max_age=None)
    binding: DeploymentBinding | None = None
    if args.topic or args.seller:
        try:
            binding = DeploymentBinding.of(topic_arns=args.topic, seller_ids=args.seller)
        except ValueError as error:  # a --topic that is no topic ARN of the aws partition
            return _usage_error(str(error))
    try:
        if binding is not None:
            result = verify_ipn(body, headers=None, verifier=verifier, binding=binding)
        else:
            result = _verify_unbound(body, verifier)
    except SnsVerificationError as error:
        verdict = "malformed" if error.http_status == 400 else "not authentic"
        if error.http_status == 503 or error.reason is Reason.CERTIFICATE_UNTRUSTED:
            verdict = "not verified"
        print(f"{verdict}: {error.reason.value}: {error.detail}", file=sys.stderr)
        if error.reason is Reason.CERTIFICATE_UNTRUSTED and certificate is not None:
            hint = _issuer_hint(certificate, args.intermediates is not None)
            if hint:
                print(hint, file=sys.stderr)
        return EXIT_NOT_AUTHENTIC
    _print_verified(result)
    return EXIT_AUTHENTIC


def _issuer_hint(pem: bytes, intermediates_given: bool) -> str | None:
    """Where the issuer's certificate can be had, as the certificate itself says (its AIA extension)."""
    try:
        certificate = load_strict_pem_certificate(pem)
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (SnsVerificationError, x509.ExtensionNotFound):
        return None
    urls = [
        d.access_location.value
        for d in access
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and _PRINTABLE_URL.fullmatch(d.access_location.value)  # no control characters to the terminal
    ]
    if not urls:
        return None
    given = (
        "the intermediates given do not lead"
        if intermediates_given
        else "no intermediates were given to lead"
    )
    return (
        f"hint: {given} from this certificate to a trusted root; its issuer's certificate is published at "
        f"{urls[0]} (pass it with --intermediates; it is checked, not trusted)"
    )


def _verify_unbound(body: bytes, verifier: SnsVerifier) -> VerifiedIpn:
    """SNS authenticity alone; the Amazon Pay fields are shown when the Message carries them."""
    message = verifier.verify(body, headers=None)
    notification = None
    if message.type is MessageType.NOTIFICATION:
        try:
            notification = parse_notification(message.message)
        except SnsVerificationError:
            notification = None  # a plain SNS notification, not an Amazon Pay IPN
        if notification is not None:
            notification_xml(notification.notification_data)
    return VerifiedIpn(message, notification)


def _print_verified(result: VerifiedIpn) -> None:
    message = result.sns
    lines = [
        f"authentic: {message.type.value}",
        f"message id: {message.message_id}",
        f"topic: {message.topic_arn}",
        f"timestamp: {message.timestamp_text}",
        f"signature version: {message.signature_version}",
    ]
    if result.notification is not None:
        notification = result.notification
        lines += [
            f"notification type: {notification.notification_type}",
            f"seller: {notification.seller_id}",
            f"notification reference id: {notification.notification_reference_id}",
        ]
        if notification.release_environment:
            lines.append(f"release environment: {notification.release_environment}")
        if notification.is_sample:
            lines.append("sample: true")
    print("\n".join(lines))
