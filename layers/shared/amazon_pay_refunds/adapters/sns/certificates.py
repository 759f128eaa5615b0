"""SNS signing certificates: the URL policy applied before any fetch, fetching, strict PEM, and the cache.

A certificate is only ever fetched from `https://sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem`
for a commercial region in SNS_REGIONS (or, for the local stack, from a configured prefix), without redirects,
with a timeout and a size cap. The answer must be exactly one PEM CERTIFICATE block: the DEF CON 30 attack
relied on a lenient PEM parser picking a certificate out of attacker-controlled text on a genuine host.
"""

from __future__ import annotations

import base64
import binascii
import re
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qsl

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import CertificateUnavailable, NotAuthentic, Reason

MAX_URL_LENGTH = 2048
MAX_CERTIFICATE_BYTES = 64 * 1024
MIN_RSA_KEY_BITS = 2048
DEFAULT_CACHE_ENTRIES = 32

# Every commercial AWS region (partition `aws`), as botocore's endpoint data lists SNS in it (a test keeps the
# two equal, so a region AWS adds fails the build until it is added here). Only these hosts are ever fetched
# from: a name like `sns.zz-nowhere-9.amazonaws.com` is refused before any DNS lookup. China
# (`amazonaws.com.cn`) and GovCloud hosts are refused too: Amazon Pay publishes its IPNs from the `aws`
# partition only, and the topic binding accepts no other partition, so no IPN this service acts on can carry
# a certificate from them.
SNS_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    }
)
SNS_HOSTS = frozenset(f"sns.{region}.amazonaws.com" for region in SNS_REGIONS)
SNS_CERTIFICATE_PATH = re.compile(r"/SimpleNotificationService-[0-9a-f]{16,64}\.pem")
# Only the characters RFC 3986 allows in a URL: no spaces, controls, backslashes or non-ASCII.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_PEM_BODY_BYTES = b"\r\n+/=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LOCAL_CERTIFICATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.pem")


def _refuse(reason: Reason, message: str) -> NotAuthentic:
    return NotAuthentic(reason, message)


def _check_characters(url: object, reason: Reason) -> str:
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH or not _URL_CHARACTERS.fullmatch(url):
        raise _refuse(reason, "the URL has characters or a length no URL of this kind has")
    return url


def _split_https_authority(url: str, *, scheme_reason: Reason) -> tuple[str, str]:
    """('host', 'rest') of an https URL whose authority is a bare host: no userinfo, no port."""
    if not url.startswith("https://"):
        raise _refuse(scheme_reason, "the URL is not https")
    rest = url[len("https://") :]
    end = len(rest)
    for delimiter in "/?#":
        index = rest.find(delimiter)
        if index != -1:
            end = min(end, index)
    authority, remainder = rest[:end], rest[end:]
    if "@" in authority:
        raise _refuse(Reason.CERT_URL_USERINFO, "the URL carries user information")
    if ":" in authority and "[" not in authority:
        raise _refuse(Reason.CERT_URL_PORT, "the URL names a port")
    return authority, remainder


def is_sns_host(host: str) -> bool:
    """`sns.<region>.amazonaws.com` for a commercial region in SNS_REGIONS, and nothing else."""
    return host in SNS_HOSTS


def check_sns_certificate_url(url: str) -> None:
    """Raise NotAuthentic unless `url` is exactly a genuine SNS signing-certificate URL."""
    _check_characters(url, Reason.CERT_URL_MALFORMED)
    if "%" in url:
        raise _refuse(Reason.CERT_URL_ENCODING, "the URL is percent-encoded")
    host, remainder = _split_https_authority(url, scheme_reason=Reason.CERT_URL_SCHEME)
    if not is_sns_host(host):
        raise _refuse(Reason.CERT_URL_HOST, "the URL's host is not an SNS host")
    if "?" in remainder:
        raise _refuse(Reason.CERT_URL_QUERY, "the URL has a query")
    if "#" in remainder:
        raise _refuse(Reason.CERT_URL_FRAGMENT, "the URL has a fragment")
    if not SNS_CERTIFICATE_PATH.fullmatch(remainder):
        raise _refuse(Reason.CERT_URL_PATH, "the URL's path is not /SimpleNotificationService-<hex>.pem")


def is_sns_certificate_url(url: str) -> bool:
    try:
        check_sns_certificate_url(url)
    except NotAuthentic:
        return False
    return True


def check_local_certificate_url(url: str, prefix: str) -> None:
    """Raise NotAuthentic unless `url` is `prefix` followed by one plain `*.pem` file name."""
    _check_characters(url, Reason.CERT_URL_MALFORMED)
    if "%" in url:
        raise _refuse(Reason.CERT_URL_ENCODING, "the URL is percent-encoded")
    if not url.startswith(prefix):
        raise _refuse(Reason.CERT_URL_HOST, "the URL is not under the allowed local prefix")
    name = url[len(prefix) :]
    if "?" in name:
        raise _refuse(Reason.CERT_URL_QUERY, "the URL has a query")
    if "#" in name:
        raise _refuse(Reason.CERT_URL_FRAGMENT, "the URL has a fragment")
    if not _LOCAL_CERTIFICATE_NAME.fullmatch(name):
        raise _refuse(Reason.CERT_URL_PATH, "the URL's last segment is not a plain .pem file name")


def check_confirm_subscription_query(query: str, *, topic_arn: str, token: str) -> None:
    """The query of a SubscribeURL: Action=ConfirmSubscription once, TopicArn/Token equal to the message's."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise _refuse(Reason.SUBSCRIBE_URL_INVALID, "the SubscribeURL query is malformed") from None
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    if values.get("Action") != ["ConfirmSubscription"]:
        raise _refuse(Reason.SUBSCRIBE_URL_INVALID, "the SubscribeURL is not Action=ConfirmSubscription")
    if values.get("TopicArn", [topic_arn]) != [topic_arn] or values.get("Token", [token]) != [token]:
        raise _refuse(Reason.SUBSCRIBE_URL_INVALID, "the SubscribeURL names another topic or token")


def check_sns_subscribe_url(url: str, *, topic_arn: str, token: str) -> None:
    """Raise NotAuthentic unless `url` is `https://<SNS host>/?Action=ConfirmSubscription&…` for the topic."""
    _check_characters(url, Reason.SUBSCRIBE_URL_INVALID)
    try:
        host, remainder = _split_https_authority(url, scheme_reason=Reason.SUBSCRIBE_URL_INVALID)
    except NotAuthentic as error:
        raise _refuse(Reason.SUBSCRIBE_URL_INVALID, error.detail) from None
    if not is_sns_host(host) or "#" in remainder or not remainder.startswith("/?"):
        raise _refuse(Reason.SUBSCRIBE_URL_INVALID, "the SubscribeURL is not https://<SNS host>/?…")
    check_confirm_subscription_query(remainder[2:], topic_arn=topic_arn, token=token)


def load_strict_pem_certificate(body: bytes) -> x509.Certificate:
    """Exactly one PEM CERTIFICATE block, optionally surrounded by whitespace, and nothing else."""
    if len(body) > MAX_CERTIFICATE_BYTES:
        raise _refuse(Reason.CERTIFICATE_TOO_LARGE, f"the certificate exceeds {MAX_CERTIFICATE_BYTES} bytes")
    text = body.strip(b" \t\r\n")
    begin, end = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
    if not (text.startswith(begin) and text.endswith(end)) or len(text) <= len(begin) + len(end):
        raise _refuse(Reason.CERTIFICATE_NOT_PEM, "the certificate is not a single PEM block")
    encoded = text[len(begin) : -len(end)]
    if encoded.translate(None, _PEM_BODY_BYTES):
        raise _refuse(Reason.CERTIFICATE_NOT_PEM, "the certificate is not a single PEM block")
    try:
        der = base64.b64decode(encoded.translate(None, b"\r\n"), validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise _refuse(Reason.CERTIFICATE_NOT_PEM, "the PEM block is not an X.509 certificate") from None
    if certificate.public_bytes(Encoding.DER) != der:
        raise _refuse(Reason.CERTIFICATE_NOT_PEM, "the PEM block carries more than one certificate")
    return certificate


@dataclass(frozen=True, slots=True)
class TrustedCertificate:
    """What the verifier keeps of a certificate that passed the trust checks: its key and validity."""

    public_key: rsa.RSAPublicKey
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> TrustedCertificate:
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_KEY_BITS:
            raise _refuse(
                Reason.CERTIFICATE_KEY_UNSUPPORTED, "the certificate's key is not RSA of 2048+ bits"
            )
        return cls(key, certificate.not_valid_before_utc, certificate.not_valid_after_utc)

    def check_validity(self, at: datetime) -> None:
        if at < self.not_before:
            raise _refuse(Reason.CERTIFICATE_NOT_YET_VALID, "the certificate is not valid yet")
        if at > self.not_after:
            raise _refuse(Reason.CERTIFICATE_EXPIRED, "the certificate has expired")


class CertificateCache:
    """A bounded LRU of trusted certificates by URL, so that a warm Lambda fetches and parses each once.

    Safe to share between threads: each OrderedDict operation is atomic, and a lost race only costs a fetch.
    """

    def __init__(self, max_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[str, TrustedCertificate] = OrderedDict()

    def get(self, url: str) -> TrustedCertificate | None:
        entry = self._entries.get(url)
        if entry is not None:
            try:  # noqa: SIM105 (hot path: suppress() costs a context manager per call)
                self._entries.move_to_end(url)
            except KeyError:
                pass  # evicted by another thread meanwhile; the entry itself is still good
        return entry

    def put(self, url: str, certificate: TrustedCertificate) -> None:
        self._entries[url] = certificate
        self._entries.move_to_end(url)
        while len(self._entries) > self._max_entries:
            try:
                self._entries.popitem(last=False)
            except KeyError:
                break

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, url: object) -> bool:
        return url in self._entries


@dataclass(frozen=True, slots=True)
class CertificateResponse:
    status: int
    body: bytes


class CertificateFetcher(Protocol):
    """GET one URL without following redirects; raise CertificateUnavailable on network failure."""

    def __call__(self, url: str) -> CertificateResponse: ...


class RequestsCertificateFetcher:
    """The default fetcher: verified TLS, no redirects, connect/read timeouts, a deadline, a size cap."""

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = (3.05, 5.0),
        deadline_seconds: float = 8.0,
        max_bytes: int = MAX_CERTIFICATE_BYTES,
        session: requests.Session | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._deadline_seconds = deadline_seconds
        self._max_bytes = max_bytes
        self._session = session or requests.Session()
        self._monotonic = monotonic

    def __call__(self, url: str) -> CertificateResponse:
        started = self._monotonic()
        try:
            with self._session.get(
                url, timeout=self._timeout, allow_redirects=False, stream=True
            ) as response:
                body = bytearray()
                for chunk in response.iter_content(chunk_size=8192):
                    body += chunk
                    if len(body) > self._max_bytes:
                        break  # the caller refuses it as too large; no need to read the rest
                    if self._monotonic() - started > self._deadline_seconds:
                        raise CertificateUnavailable(
                            Reason.CERTIFICATE_FETCH_FAILED, "the certificate download took too long"
                        )
                return CertificateResponse(response.status_code, bytes(body))
        except requests.RequestException as error:
            raise _fetch_failure(error) from None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps: requests wraps urllib3, which wraps the socket and ssl errors."""
    seen: set[int] = set()
    pending = [error]
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))


# getaddrinfo's answers that mean the name does not exist (NXDOMAIN, or no address for it). EAI_AGAIN
# (the resolver could not answer now) and EAI_FAIL (a server failure) are transient.
_NAME_DOES_NOT_EXIST = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


def _fetch_failure(error: requests.RequestException) -> NotAuthentic | CertificateUnavailable:
    """A listed SNS host that does not exist or fails TLS verification is not SNS (403, no redelivery can
    change that); anything else (timeouts, refused or reset connections, a resolver that cannot answer
    now) may pass, and is transient (503, SNS redelivers)."""
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _refuse(Reason.CERTIFICATE_TLS_FAILED, "the certificate host failed TLS verification")
        if isinstance(cause, socket.gaierror) and cause.errno in _NAME_DOES_NOT_EXIST:
            return _refuse(Reason.CERTIFICATE_HOST_UNKNOWN, "the certificate host's name does not exist")
    return CertificateUnavailable(
        Reason.CERTIFICATE_FETCH_FAILED, f"the certificate could not be fetched ({type(error).__name__})"
    )


def certificate_from_response(response: CertificateResponse) -> x509.Certificate:
    """Status 200 and a strict PEM body; redirects and client errors refused, server errors transient."""
    status = response.status
    if 300 <= status < 400:
        raise _refuse(Reason.CERTIFICATE_REDIRECT, f"the certificate URL answered a redirect ({status})")
    if 400 <= status < 500 and status not in (408, 429):
        raise _refuse(Reason.CERTIFICATE_NOT_FOUND, f"the certificate URL answered {status}")
    if status != 200:
        raise CertificateUnavailable(
            Reason.CERTIFICATE_FETCH_FAILED, f"the certificate URL answered {status}; try again later"
        )
    return load_strict_pem_certificate(response.body)
