"""`refunds ipn verify FILE`: check a stored IPN offline with every URL and certificate rule applied.

Without `--certificate` the genuine SNS certificate URL is fetched (and nothing else can be); with it, the
file stands for what the SigningCertURL would return and nothing is fetched at all. No freshness limit
applies (stored IPNs are old by nature), but `--at` sets the clock for certificate validity.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amazon_pay_refunds.sns import (
    CertificateFetcher,
    CertificateResponse,
    DeploymentBinding,
    MessageType,
    RequestsCertificateFetcher,
    SnsVerificationError,
    SnsVerifier,
    VerifiedIpn,
    notification_xml,
    parse_notification,
    verify_ipn,
)

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


def run_verify(args: argparse.Namespace) -> int:
    try:
        body = args.file.read_bytes()
        fetcher: CertificateFetcher = (
            _SuppliedCertificate(args.certificate.read_bytes())
            if args.certificate is not None
            else RequestsCertificateFetcher()
        )
    except OSError as error:
        print(f"refunds ipn verify: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    at: datetime = args.at or datetime.now(UTC)
    verifier = SnsVerifier(fetcher=fetcher, clock=lambda: at, max_age=None)
    try:
        if args.topic or args.seller:
            binding = DeploymentBinding.of(topic_arns=args.topic, seller_ids=args.seller)
            result = verify_ipn(body, headers=None, verifier=verifier, binding=binding)
        else:
            result = _verify_unbound(body, verifier)
    except SnsVerificationError as error:
        verdict = "malformed" if error.http_status == 400 else "not authentic"
        if error.http_status == 503:
            verdict = "not verified"
        print(f"{verdict}: {error.reason.value}: {error.detail}", file=sys.stderr)
        return EXIT_NOT_AUTHENTIC
    _print_verified(result)
    return EXIT_AUTHENTIC


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
