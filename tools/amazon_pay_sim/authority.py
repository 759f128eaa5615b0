"""The simulator's local certificate authority and its SNS signing certificate (local testing only).

Amazon SNS signs each message with the key of a certificate whose subject is `sns.amazonaws.com`, served at
`https://sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem`. The simulator does the same with a
certificate issued by a CA of its own, served from its own HTTP base; `LocalAuthorityTrust(ca_pem, prefix)`
trusts it, the production `SnsCertificateTrust` never does (http URL, not an SNS host).

In memory by default; `load_or_create(directory)` persists the CA and the signing certificate (keys 0600)
so that a long-running local stack and a command line can share them (`ca.pem` is what
`REFUNDS_LOCAL_SNS_CA_PEM` points at).
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SNS_SUBJECT = "sns.amazonaws.com"
CA_SUBJECT = "amazon-pay-sim local SNS authority (testing only)"
KEY_BITS = 2048
VALIDITY = timedelta(days=3650)
# Certificates start a day early so that a clock a little behind still sees them valid.
BACKDATE = timedelta(days=1)
# A persisted authority about to expire is replaced rather than served.
RENEW_BEFORE = timedelta(days=30)

CA_CERTIFICATE_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SIGNING_CERTIFICATE_FILE = "sns-signing.pem"
SIGNING_KEY_FILE = "sns-signing-key.pem"
_LOCK_FILE = ".lock"

# SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA.
_HASHES: dict[str, type[hashes.SHA1] | type[hashes.SHA256]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "amazon-pay-sim (local testing only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue_ca(key: rsa.RSAPrivateKey, now: datetime) -> x509.Certificate:
    name = _name(CA_SUBJECT)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue_signing(
    key: rsa.RSAPrivateKey, ca: x509.Certificate, ca_key: rsa.RSAPrivateKey, now: datetime
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(SNS_SUBJECT))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + VALIDITY, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class LocalAuthority:
    """A CA and the `sns.amazonaws.com` certificate it issued; signs SNS messages as SNS would."""

    ca_certificate: x509.Certificate
    ca_key: rsa.RSAPrivateKey
    signing_certificate: x509.Certificate
    signing_key: rsa.RSAPrivateKey

    @classmethod
    def create(cls, *, now: datetime | None = None) -> LocalAuthority:
        """A fresh authority, in memory only (two RSA-2048 keys)."""
        moment = now or datetime.now(UTC)
        ca_key = _new_key()
        ca = _issue_ca(ca_key, moment)
        signing_key = _new_key()
        return cls(ca, ca_key, _issue_signing(signing_key, ca, ca_key, moment), signing_key)

    @classmethod
    def load_or_create(
        cls, directory: str | os.PathLike[str], *, now: datetime | None = None
    ) -> LocalAuthority:
        """The authority persisted in `directory`, created (or renewed when near expiry) if need be.

        Concurrent starts with the same directory agree on one authority (a lock file serialises them).
        """
        moment = now or datetime.now(UTC)
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            loaded = cls._load(folder)
            if loaded is not None and loaded._fresh(moment):
                return loaded
            authority = cls.create(now=moment)
            authority._save(folder)
            return authority

    @classmethod
    def _load(cls, folder: Path) -> LocalAuthority | None:
        paths = [
            folder / name
            for name in (CA_CERTIFICATE_FILE, CA_KEY_FILE, SIGNING_CERTIFICATE_FILE, SIGNING_KEY_FILE)
        ]
        present = [path.exists() for path in paths]
        if not any(present):
            return None
        if not all(present):
            missing = ", ".join(path.name for path, there in zip(paths, present, strict=True) if not there)
            raise ValueError(
                f"the CA directory {folder} is incomplete (missing {missing}); empty it to start over"
            )
        try:
            ca = x509.load_pem_x509_certificate(paths[0].read_bytes())
            ca_key = serialization.load_pem_private_key(paths[1].read_bytes(), password=None)
            signing = x509.load_pem_x509_certificate(paths[2].read_bytes())
            signing_key = serialization.load_pem_private_key(paths[3].read_bytes(), password=None)
        except ValueError as error:
            raise ValueError(f"the CA directory {folder} holds an unreadable file: {error}") from None
        if not isinstance(ca_key, rsa.RSAPrivateKey) or not isinstance(signing_key, rsa.RSAPrivateKey):
            raise ValueError(f"the CA directory {folder} holds a key that is not RSA")
        authority = cls(ca, ca_key, signing, signing_key)
        authority._check_consistent(folder)
        return authority

    def _check_consistent(self, folder: Path) -> None:
        same = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if self.ca_certificate.public_key().public_bytes(*same) != self.ca_key.public_key().public_bytes(
            *same
        ):
            raise ValueError(f"the CA directory {folder}: ca-key.pem does not belong to ca.pem")
        if self.signing_certificate.public_key().public_bytes(
            *same
        ) != self.signing_key.public_key().public_bytes(*same):
            raise ValueError(f"the CA directory {folder}: the signing key does not belong to its certificate")
        try:
            self.signing_certificate.verify_directly_issued_by(self.ca_certificate)
        except (ValueError, TypeError, InvalidSignature):
            raise ValueError(
                f"the CA directory {folder}: the signing certificate is not issued by ca.pem"
            ) from None

    def _fresh(self, now: datetime) -> bool:
        return all(
            cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc
            for cert in (self.ca_certificate, self.signing_certificate)
        )

    def _save(self, folder: Path) -> None:
        # Keys first, CA certificate last: a reader that sees ca.pem sees a complete authority.
        _write(folder / CA_KEY_FILE, _key_pem(self.ca_key), secret=True)
        _write(folder / SIGNING_KEY_FILE, _key_pem(self.signing_key), secret=True)
        _write(folder / SIGNING_CERTIFICATE_FILE, self.signing_certificate_pem.encode("ascii"), secret=False)
        _write(folder / CA_CERTIFICATE_FILE, self.ca_certificate_pem.encode("ascii"), secret=False)

    @property
    def ca_certificate_pem(self) -> str:
        return _pem(self.ca_certificate)

    @property
    def signing_certificate_pem(self) -> str:
        return _pem(self.signing_certificate)

    @property
    def certificate_name(self) -> str:
        """`SimpleNotificationService-<hex>.pem`: the last segment of every SigningCertURL, SNS-style."""
        digest = hashlib.sha256(self.signing_certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
        return f"SimpleNotificationService-{digest[:32]}.pem"

    def sign(self, data: bytes, signature_version: str) -> str:
        """Base64 RSA PKCS#1 v1.5 signature: SHA1 for SignatureVersion 1, SHA256 for 2."""
        algorithm = _HASHES.get(signature_version)
        if algorithm is None:
            raise ValueError("SignatureVersion must be '1' or '2'")
        signature = self.signing_key.sign(data, padding.PKCS1v15(), algorithm())
        return base64.b64encode(signature).decode("ascii")


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    """Atomically: a temporary file in the same directory, then a rename."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(temporary, 0o600 if secret else 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock, last writer wins
        yield
        return
    with open(folder / _LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
