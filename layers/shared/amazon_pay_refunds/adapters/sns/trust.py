"""Which signing certificates are trusted: Amazon SNS in production, a local authority for the local stack.

Production trust rests on the certificate URL (an exact SNS host, fetched over verified TLS) and on the
certificate's subject. A certificate that did not come over that TLS connection (an operator's file, for
`refunds ipn verify --certificate`) must moreover chain to a public certificate authority of the system
trust store (`PublicAuthorityTrust`): a subject alone is what anyone can write into a self-signed
certificate. The local authority exists for the simulator, which signs IPNs with a certificate of its own CA
served from its own `http://127.0.0.1:PORT/` base; it can never be switched on inside AWS Lambda.
"""

from __future__ import annotations

import os
import ssl
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from ...config import ConfigurationError, running_in_lambda
from .certificates import (
    check_confirm_subscription_query,
    check_local_certificate_url,
    check_sns_certificate_url,
    check_sns_subscribe_url,
    load_strict_pem_certificate,
)
from .errors import NotAuthentic, Reason

SNS_CERTIFICATE_SUBJECT = "sns.amazonaws.com"
LOCAL_CA_VARIABLE = "REFUNDS_LOCAL_SNS_CA_PEM"
LOCAL_PREFIX_VARIABLE = "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX"


class CertificateTrust(Protocol):
    """The policy a verifier applies to certificate URLs, certificates and subscription URLs."""

    def check_certificate_url(self, url: str) -> None:
        """Raise NotAuthentic unless the certificate may be fetched from `url` (called before any fetch)."""

    def check_certificate(self, certificate: x509.Certificate) -> None:
        """Raise NotAuthentic unless the certificate may sign SNS messages (validity is checked apart)."""

    def check_subscribe_url(self, url: str, *, topic_arn: str, token: str) -> None:
        """Raise NotAuthentic unless `url` is a confirmation URL for this topic that may be fetched."""


class SnsCertificateTrust:
    """Production: genuine SNS certificate URLs only, and the subject common name `sns.amazonaws.com`."""

    def __init__(self, subject_common_names: frozenset[str] = frozenset({SNS_CERTIFICATE_SUBJECT})) -> None:
        self._subject_common_names = subject_common_names

    def check_certificate_url(self, url: str) -> None:
        check_sns_certificate_url(url)

    def check_certificate(self, certificate: x509.Certificate) -> None:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(names) != 1 or names[0].value not in self._subject_common_names:
            raise NotAuthentic(Reason.CERTIFICATE_SUBJECT, "the certificate's subject is not SNS")

    def check_subscribe_url(self, url: str, *, topic_arn: str, token: str) -> None:
        check_sns_subscribe_url(url, topic_arn=topic_arn, token=token)


def _certificates_in(path: Path) -> list[x509.Certificate]:
    with warnings.catch_warnings():
        # Some roots in distributions' stores carry a non-positive serial number; they still load.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_pem_x509_certificates(path.read_bytes())


def system_trust_roots() -> list[x509.Certificate]:
    """The root certificates of the system trust store: OpenSSL's default CA file (which `SSL_CERT_FILE`
    overrides), else the certificates in its default CA directory. ValueError when there are none."""
    paths = ssl.get_default_verify_paths()
    for name in (paths.cafile, paths.openssl_cafile):
        if name and Path(name).is_file():
            return _certificates_in(Path(name))
    roots: dict[bytes, x509.Certificate] = {}
    directory = Path(paths.capath or paths.openssl_capath or "")
    if str(directory) != "." and directory.is_dir():
        for entry in sorted(directory.iterdir()):
            try:
                found = _certificates_in(entry) if entry.is_file() else []
            except (OSError, ValueError):
                continue  # not a PEM certificate file
            roots.update((root.fingerprint(SHA256()), root) for root in found)
    if not roots:
        raise ValueError("no system trust store found (set SSL_CERT_FILE to a PEM file of root certificates)")
    return list(roots.values())


class PublicAuthorityTrust(SnsCertificateTrust):
    """SNS trust for a certificate that did not come over TLS from its SigningCertURL: besides the URL and
    subject rules, it must chain, through `intermediates` (SNS serves the leaf alone), to one of `roots` (the
    public authorities of the system trust store), as a TLS server certificate for sns.amazonaws.com, every
    certificate of the chain valid at `at`. The chain is built and checked by cryptography's verifier."""

    def __init__(
        self, roots: Sequence[x509.Certificate], intermediates: Sequence[x509.Certificate], at: datetime
    ) -> None:
        super().__init__()
        self._verifier = (
            PolicyBuilder()
            .store(Store(list(roots)))
            .time(at)
            .build_server_verifier(x509.DNSName(SNS_CERTIFICATE_SUBJECT))
        )
        self._intermediates = list(intermediates)
        self._at = at.astimezone(UTC)

    def check_certificate(self, certificate: x509.Certificate) -> None:
        super().check_certificate(certificate)
        try:
            self._verifier.verify(certificate, self._intermediates)
        except VerificationError:
            raise NotAuthentic(
                Reason.CERTIFICATE_UNTRUSTED,
                "the certificate's origin could not be verified: it does not chain to a public certificate "
                f"authority of the trust store, valid at {self._at:%Y-%m-%dT%H:%M:%SZ}",
            ) from None


class LocalAuthorityTrust:
    """Local stack and tests: certificate URLs under one exact prefix, certificates issued by one CA."""

    def __init__(self, ca_certificate_pem: str | bytes, allowed_url_prefix: str) -> None:
        pem = (
            ca_certificate_pem.encode("ascii") if isinstance(ca_certificate_pem, str) else ca_certificate_pem
        )
        try:
            self._authority = load_strict_pem_certificate(pem)
        except NotAuthentic as error:
            raise ValueError(f"the local CA certificate is unusable ({error.reason.value})") from None
        parts = urlsplit(allowed_url_prefix)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.query
            or parts.fragment
            or "%" in allowed_url_prefix
            or not allowed_url_prefix.endswith("/")
        ):
            raise ValueError("the local certificate URL prefix must be an http(s) URL ending in '/'")
        self._prefix = allowed_url_prefix
        self._origin = f"{parts.scheme}://{parts.netloc}/"

    @property
    def allowed_url_prefix(self) -> str:
        return self._prefix

    def check_certificate_url(self, url: str) -> None:
        check_local_certificate_url(url, self._prefix)

    def check_certificate(self, certificate: x509.Certificate) -> None:
        try:
            certificate.verify_directly_issued_by(self._authority)
        except (ValueError, TypeError, InvalidSignature):
            raise NotAuthentic(
                Reason.CERTIFICATE_UNTRUSTED, "the certificate is not issued by the local authority"
            ) from None

    def check_subscribe_url(self, url: str, *, topic_arn: str, token: str) -> None:
        if not isinstance(url, str) or not url.startswith(self._origin) or "#" in url:
            raise NotAuthentic(Reason.SUBSCRIBE_URL_INVALID, "the SubscribeURL is not on the local origin")
        parts = urlsplit(url)
        check_confirm_subscription_query(parts.query, topic_arn=topic_arn, token=token)


def trust_from_environment(environ: Mapping[str, str] | None = None) -> CertificateTrust:
    """SNS trust, unless both local variables are set outside AWS Lambda (refused inside it).

    `REFUNDS_LOCAL_SNS_CA_PEM` holds the CA certificate as PEM text or a path to a PEM file;
    `REFUNDS_LOCAL_SNS_CERT_URL_PREFIX` the base the simulator serves its signing certificates from.
    """
    env = os.environ if environ is None else environ
    ca = env.get(LOCAL_CA_VARIABLE, "").strip()
    prefix = env.get(LOCAL_PREFIX_VARIABLE, "").strip()
    if not ca and not prefix:
        return SnsCertificateTrust()
    if running_in_lambda(env):
        raise ConfigurationError("a local SNS certificate authority is refused in AWS Lambda")
    if not ca or not prefix:
        raise ConfigurationError(f"{LOCAL_CA_VARIABLE} and {LOCAL_PREFIX_VARIABLE} must be set together")
    try:
        pem = ca if ca.startswith("-----BEGIN") else Path(ca).read_text(encoding="ascii")
        return LocalAuthorityTrust(pem, prefix)
    except (OSError, ValueError) as error:
        raise ConfigurationError(str(error)) from None
