"""Amazon Pay API v2 request signing: AMZN-PAY-RSASSA-PSS (salt 20) and AMZN-PAY-RSASSA-PSS-V2 (salt 32).

Canonical request::

    METHOD \\n canonical path \\n canonical query \\n
    name:value\\n for each signed header (lower-case names, sorted) \\n
    signed header names joined by ";" \\n hex(SHA-256(body))

String to sign: ``<algorithm>\\n`` + hex(SHA-256(canonical request)); the signature is RSASSA-PSS with
SHA-256 and MGF1(SHA-256) over it, Base64. Checked against every vector of the official Java SDK's test
data (tests/fixtures/v2/java-sdk-signing-testdata.js). A verifier rebuilds the canonical request from the
``SignedHeaders`` list of the request (`parse_authorization`), since every SDK signs a different set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHM_V1 = "AMZN-PAY-RSASSA-PSS"
ALGORITHM_V2 = "AMZN-PAY-RSASSA-PSS-V2"
SALT_LENGTHS: dict[str, int] = {ALGORITHM_V1: 20, ALGORITHM_V2: 32}
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

# RFC 3986 unreserved characters stay as they are; everything else is %XX of its UTF-8 bytes.
_UNRESERVED = "-._~"
_AUTHORIZATION = re.compile(
    r"^(?P<algorithm>\S+) PublicKeyId=(?P<key>[^,\s]+), ?SignedHeaders=(?P<headers>[^,\s]+), ?"
    r"Signature=(?P<signature>\S+)$"
)
_SLASHES = re.compile(r"/{2,}")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

QueryParams = Mapping[str, str | Sequence[str]]


class SigningError(ValueError):
    """A request that cannot be signed or an Authorization header that cannot be read."""


def _encode(text: str) -> str:
    return quote(text, safe=_UNRESERVED)


def canonical_path(uri: str) -> str:
    """The path of ``uri`` (a path or a URL), runs of "/" collapsed, percent-encoded; "/" when empty.

    ``uri`` is read as a URI reference and normalised as the Java SDK does (``java.net.URI``): ``//foo//``
    has the authority ``foo`` and the path ``//``, which becomes ``/`` (the ``get-slashes`` vector).
    """
    path = _SLASHES.sub("/", urlsplit(uri).path)
    if not path:
        return "/"
    return quote(path, safe="/" + _UNRESERVED)


def canonical_query(params: QueryParams | None) -> str:
    """Keys and values percent-encoded (%20 for a space), sorted by key then value; empty values dropped."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        values = [value] if isinstance(value, str) else list(value)
        pairs.extend((_encode(key), _encode(item)) for item in values if item != "")
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def _canonical_headers(headers: Mapping[str, str], signed_headers: Sequence[str]) -> tuple[str, str]:
    by_name: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in by_name:
            raise SigningError(f"header {lower!r} is given twice")
        by_name[lower] = value
    names = sorted({name.lower() for name in signed_headers})
    if not names:
        raise SigningError("no header is signed")
    lines = []
    for name in names:
        if name not in by_name:
            raise SigningError(f"signed header {name!r} is not in the request")
        lines.append(f"{name}:{by_name[name].strip()}\n")
    return "".join(lines), ";".join(names)


def canonical_request(
    method: str,
    uri: str,
    query: QueryParams | None,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload: bytes,
) -> str:
    header_lines, names = _canonical_headers(headers, signed_headers)
    return (
        f"{method.upper()}\n{canonical_path(uri)}\n{canonical_query(query)}\n"
        f"{header_lines}\n{names}\n{hashlib.sha256(payload).hexdigest()}"
    )


def string_to_sign(algorithm: str, canonical: str) -> str:
    _salt_length(algorithm)
    return f"{algorithm}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def _salt_length(algorithm: str) -> int:
    try:
        return SALT_LENGTHS[algorithm]
    except KeyError:
        raise SigningError(f"unknown signing algorithm {algorithm[:40]!r}") from None


def _pss(algorithm: str) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=_salt_length(algorithm))


def sign(private_key: rsa.RSAPrivateKey, algorithm: str, text: str) -> str:
    """Base64 RSASSA-PSS (SHA-256, MGF1 SHA-256, the algorithm's salt length) of ``text``."""
    signature = private_key.sign(text.encode("utf-8"), _pss(algorithm), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(public_key: rsa.RSAPublicKey, algorithm: str, text: str, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is the algorithm's signature of ``text`` under ``public_key``.

    The salt length is checked exactly: a salt-20 signature does not pass as AMZN-PAY-RSASSA-PSS-V2.
    """
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(signature, text.encode("utf-8"), _pss(algorithm), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Authorization:
    algorithm: str
    public_key_id: str
    signed_headers: tuple[str, ...]
    signature: str

    def header(self) -> str:
        return (
            f"{self.algorithm} PublicKeyId={self.public_key_id}, "
            f"SignedHeaders={';'.join(self.signed_headers)}, Signature={self.signature}"
        )


def parse_authorization(value: str) -> Authorization:
    """``<alg> PublicKeyId=<id>, SignedHeaders=<a;b>, Signature=<b64>``; SigningError when malformed."""
    match = _AUTHORIZATION.fullmatch(value.strip())
    if match is None:
        raise SigningError(
            "the Authorization header must read '<algorithm> PublicKeyId=<id>, SignedHeaders=<a;b;...>, "
            "Signature=<base64>'"
        )
    algorithm = match.group("algorithm")
    _salt_length(algorithm)
    names = tuple(match.group("headers").split(";"))
    if any(not _HEADER_NAME.fullmatch(name) for name in names):
        raise SigningError("SignedHeaders must be header names separated by ';'")
    return Authorization(algorithm, match.group("key"), names, match.group("signature"))


def signed_names(headers: Iterable[str]) -> list[str]:
    """Lower-case, sorted, unique header names."""
    return sorted({name.lower() for name in headers})


def sign_request(
    *,
    private_key: rsa.RSAPrivateKey,
    public_key_id: str,
    algorithm: str,
    method: str,
    uri: str,
    query: QueryParams | None,
    headers: Mapping[str, str],
    payload: bytes,
) -> dict[str, str]:
    """``headers`` plus the Authorization header, every header with a value signed (as the Java and .NET
    SDKs do); empty-valued headers are left out, as the PHP SDK leaves them out."""
    sent = {name.lower(): value for name, value in headers.items() if value.strip()}
    names = signed_names(sent)
    canonical = canonical_request(method, uri, query, sent, names, payload)
    signature = sign(private_key, algorithm, string_to_sign(algorithm, canonical))
    sent["authorization"] = Authorization(algorithm, public_key_id, tuple(names), signature).header()
    return sent
