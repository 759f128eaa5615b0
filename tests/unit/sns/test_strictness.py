"""The SNS parser and the signature check refuse exactly what independent references refuse.

- `parse_sns_message`: every body (genuine, odd, hostile, the real fixtures) that a second, independent
  decoding refuses at the body and JSON layer (size, UTF-8, JSON, an object, duplicate keys anywhere) is
  refused for the same reason; the fields' own checks are pinned in test_message.py and
  test_hostile_corpus.py;
- `SnsVerifier.verify` uses `public_key.verify` (RSASSA-PKCS1-v1_5); every signature must be accepted or
  refused exactly as `public_key.verify(signature, string_to_sign, PKCS1v15(), SHA1/SHA256)` decides,
  malformed, truncated and other-digest signatures included.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from amazon_pay_refunds.adapters.sns import (
    CertificateResponse,
    NotAuthentic,
    Reason,
    SnsVerificationError,
    SnsVerifier,
    parse_sns_message,
    string_to_sign,
)
from amazon_pay_refunds.adapters.sns.message import MAX_BODY_BYTES
from tests.support import sns_forge as forge
from tests.support.sns_fixtures import RealFixture
from tests.support.sns_forge import CERT_URL, NOW, Identity

Outcome = tuple[str, Any]


def outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", call())
    except SnsVerificationError as error:
        return (type(error).__name__, error.reason)


BODY_AND_JSON = {
    Reason.BODY_TOO_LARGE,
    Reason.BODY_NOT_UTF8,
    Reason.BODY_NOT_JSON,
    Reason.BODY_NOT_OBJECT,
    Reason.DUPLICATE_FIELD,
}


def reference_refusal(body: str | bytes) -> Reason | None:
    """An independent decision at the body and JSON layer: the Reason to refuse, or None to go on."""
    if isinstance(body, bytes):
        if len(body) > MAX_BODY_BYTES:
            return Reason.BODY_TOO_LARGE
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Reason.BODY_NOT_UTF8
    else:
        try:
            size = len(body.encode("utf-8"))
        except UnicodeEncodeError:
            return Reason.BODY_NOT_UTF8
        if size > MAX_BODY_BYTES:
            return Reason.BODY_TOO_LARGE
        text = body
    # json.loads with its own hooks: a second, independent decoding of the text.
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Duplicate:
        return Reason.DUPLICATE_FIELD
    except (ValueError, RecursionError):
        return Reason.BODY_NOT_JSON
    return None if isinstance(document, dict) else Reason.BODY_NOT_OBJECT


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _Duplicate
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)


def _bodies(identity: Identity) -> list[tuple[str, str | bytes]]:
    """Genuine, odd and hostile bodies: each case changes one thing, or two whose order of checks matters."""
    base = forge.envelope(identity, version="1")
    text = _text(base)

    def changed(**fields: Any) -> str:
        document = dict(base)
        for name, value in fields.items():
            if value is _DROP:
                document.pop(name, None)
            else:
                document[name] = value
        return _text(document)

    cases: list[tuple[str, str | bytes]] = [
        ("genuine", text),
        ("genuine bytes", text.encode()),
        ("genuine compact", json.dumps(base, separators=(",", ":"))),
        ("SNS layout", text.replace('": ', '" : ')),
        ("with Subject", changed(Subject="Hello")),
        ("without UnsubscribeURL", changed(UnsubscribeURL=_DROP)),
        ("leading and trailing whitespace", " \r\n\t" + text + "\n\n "),
        ("only whitespace", " \n\t "),
        ("empty", ""),
        ("trailing garbage", text + " x"),
        ("two objects", text + text),
        ("an array", json.dumps([base])),
        ("a string", json.dumps(text)),
        ("NaN value", text.replace('"Type": "Notification"', '"Type": "Notification", "X": NaN')),
        ("Infinity value", text.replace('"Type": "Notification"', '"Type": "Notification", "X": -Infinity')),
        ("not UTF-8", text.encode().replace(b"Notification", b"Notific\xffation")),
        ("lone surrogate str", text.replace('"Type": "Notification"', '"Type": "Notification\udc80"')),
        ("too large", text.encode() + b" " * MAX_BODY_BYTES),
        ("too large str", text + " " * MAX_BODY_BYTES),
        # Duplicate keys: the classic "two parsers pick different copies" bypass.
        (
            "duplicate Message",
            text.replace('"Type": "Notification"', '"Message": "evil", "Type": "Notification"'),
        ),
        (
            "duplicate Type, escaped",
            text.replace('"Type": "Notification"', '"T\\u0079pe": "x", "Type": "Notification"'),
        ),
        ("duplicate Signature last", text[:-2] + ', "Signature": "' + base["Signature"] + '"\n}'),
        (
            "duplicate in nested field",
            text.replace('"Type": "Notification"', '"X": {"a": 1, "a": 2}, "Type": "Notification"'),
        ),
        (
            "duplicate deep in an array",
            text.replace(
                '"Type": "Notification"', '"X": [[{"a": {"b": 1, "b": 1}}]], "Type": "Notification"'
            ),
        ),
        ("duplicate then bad JSON", '{"a": 1, "a": 2} x'),
        (
            "nested object without duplicate",
            text.replace('"Type": "Notification"', '"X": {"a": 1}, "Type": "Notification"'),
        ),
        ("unknown field", changed(Extra="x")),
        # Type
        (
            "SubscriptionConfirmation",
            changed(Type="SubscriptionConfirmation", SubscribeURL="https://x", Token="t"),
        ),
        ("UnsubscribeConfirmation without Token", changed(Type="UnsubscribeConfirmation", SubscribeURL="u")),
        ("unknown Type", changed(Type="Notice")),
        ("Type not a string", changed(Type=["Notification"])),
        ("Type null", changed(Type=None)),
        ("Type missing", changed(Type=_DROP)),
        (
            "Subject of a subscription not a string",
            changed(Type="SubscriptionConfirmation", SubscribeURL="https://x", Token="t", Subject=1),
        ),
        # fields, one by one
        *[
            (f"{name} {label}", changed(**{name: value}))
            for name in (
                "MessageId",
                "TopicArn",
                "Message",
                "Timestamp",
                "SignatureVersion",
                "Signature",
                "SigningCertURL",
            )
            for label, value in (
                ("missing", _DROP),
                ("null", None),
                ("a number", 1),
                ("an object", {"a": "b"}),
            )
        ],
        ("Subject not a string", changed(Subject=1)),
        ("Subject null", changed(Subject=None)),
        ("UnsubscribeURL not a string", changed(UnsubscribeURL=1)),
        ("UnsubscribeURL null", changed(UnsubscribeURL=None)),
        # checks whose order matters: base64, then Timestamp, then UnsubscribeURL
        ("bad base64 and bad UnsubscribeURL", changed(Signature="!!", UnsubscribeURL=1)),
        ("bad Timestamp and bad UnsubscribeURL", changed(Timestamp="yesterday", UnsubscribeURL=1)),
        ("bad base64 and bad Timestamp", changed(Signature="!!", Timestamp="yesterday")),
        ("bad Subject and bad base64", changed(Subject=1, Signature="!!")),
        ("two fields missing", changed(Message=_DROP, Signature=_DROP)),
        ("Signature not base64", changed(Signature="not base64!")),
        ("Signature with bad padding", changed(Signature=base["Signature"] + "==")),
        (
            "Signature with a newline",
            changed(Signature=base["Signature"][:10] + "\n" + base["Signature"][10:]),
        ),
        ("Signature empty", changed(Signature="")),
        ("Timestamp without zone", changed(Timestamp="2024-05-01T11:59:30.123")),
        ("Timestamp date only", changed(Timestamp="2024-05-01")),
        ("Timestamp with a space", changed(Timestamp="2024-05-01 11:59:30.123Z")),
        ("Timestamp offset", changed(Timestamp="2024-05-01T13:59:30.123+02:00")),
        ("Timestamp not a time", changed(Timestamp="soon")),
    ]
    return cases


_DROP = object()


@pytest.fixture(scope="module")
def bodies(sns_identity: Identity) -> list[tuple[str, str | bytes]]:
    return _bodies(sns_identity)


def test_the_parse_refuses_every_body_the_reference_refuses_and_for_the_same_reason(
    bodies: list[tuple[str, str | bytes]], real_fixtures: list[RealFixture]
) -> None:
    cases = bodies + [(fixture.name, fixture.body) for fixture in real_fixtures]
    assert len({name for name, _ in cases}) == len(cases)
    refused = 0
    for name, body in cases:
        decided = outcome(partial(parse_sns_message, body))
        reference = reference_refusal(body)
        if reference is None:
            assert decided[1] not in BODY_AND_JSON, name
        else:
            refused += 1
            assert decided == ("MalformedNotification", reference), name
    assert 0 < refused < len(cases), "the cases must include bodies both layers accept and refuse"


def test_duplicate_keys_are_refused_wherever_they_are(bodies: list[tuple[str, str | bytes]]) -> None:
    duplicates = [(name, body) for name, body in bodies if name.startswith("duplicate")]
    assert len(duplicates) == 6
    for name, body in duplicates:
        assert outcome(partial(parse_sns_message, body)) == (
            "MalformedNotification",
            Reason.DUPLICATE_FIELD,
        ), name


# --- the signature -------------------------------------------------------------------------------------

_SHA1_PREFIX = bytes.fromhex("3021300906052b0e03021a05000414")
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
_MD5_PREFIX = bytes.fromhex("3020300c06082a864886f70d020505000410")
# The same DigestInfo with the NULL parameters left out, which some lenient verifiers accept.
_NO_NULL_PREFIX = {
    "1": bytes.fromhex("301f300706052b0e03021a0414"),
    "2": bytes.fromhex("302f300b06096086480165030402010420"),
}


def _raw_sign(
    key: rsa.RSAPrivateKey, payload: bytes, *, block_type: bytes = b"\x01", fill: int = 0xFF
) -> bytes:
    """A textbook RSA signature of an arbitrary PKCS#1 v1.5 block: lets a test forge malformed blocks."""
    size = (key.key_size + 7) // 8
    block = b"\x00" + block_type + bytes([fill]) * (size - 3 - len(payload)) + b"\x00" + payload
    numbers = key.private_numbers()
    return pow(int.from_bytes(block, "big"), numbers.d, numbers.public_numbers.n).to_bytes(size, "big")


def _signatures(identity: Identity, data: bytes, version: str) -> list[tuple[str, bytes]]:
    key = identity.key
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
    other = hashes.SHA256() if version == "1" else hashes.SHA1()  # noqa: S303
    prefix, digest = (_SHA1_PREFIX, hashlib.sha1) if version == "1" else (_SHA256_PREFIX, hashlib.sha256)
    genuine = key.sign(data, padding.PKCS1v15(), algorithm)
    modulus = key.public_key().public_numbers().n
    size = len(genuine)
    hashed = digest(data).digest()
    flipped = bytearray(genuine)
    flipped[-1] ^= 1
    return [
        ("genuine", genuine),
        ("textbook genuine", _raw_sign(key, prefix + hashed)),
        ("one bit flipped", bytes(flipped)),
        ("other data", key.sign(data + b"x", padding.PKCS1v15(), algorithm)),
        ("other hash", key.sign(data, padding.PKCS1v15(), other)),
        ("SHA512", key.sign(data, padding.PKCS1v15(), hashes.SHA512())),
        ("PSS", key.sign(data, padding.PSS(padding.MGF1(algorithm), 20), algorithm)),
        ("DigestInfo without NULL", _raw_sign(key, _NO_NULL_PREFIX[version] + hashed)),
        ("bare digest", _raw_sign(key, hashed)),
        ("digest then a byte", _raw_sign(key, prefix + hashed + b"\x00")),
        ("MD5 DigestInfo", _raw_sign(key, _MD5_PREFIX + hashlib.md5(data).digest())),  # noqa: S324
        ("block type 2", _raw_sign(key, prefix + hashed, block_type=b"\x02")),
        ("padding not FF", _raw_sign(key, prefix + hashed, fill=0xFE)),
        ("one zero byte prepended", b"\x00" + genuine),
        ("last byte dropped", genuine[:-1]),
        ("empty", b""),
        ("one byte", b"\x01"),
        ("zeros", bytes(size)),
        ("ones", b"\xff" * size),
        ("modulus", modulus.to_bytes(size, "big")),
        ("modulus minus one", (modulus - 1).to_bytes(size, "big")),
        ("one", (1).to_bytes(size, "big")),
        *[(f"random {n}", os.urandom(size)) for n in range(20)],
    ]


def _verify_with(identity: Identity, document: dict[str, Any], signature: bytes) -> Outcome:
    document = {**document, "Signature": base64.b64encode(signature).decode()}
    fetcher = forge.SpyFetcher({CERT_URL: CertificateResponse(200, identity.pem)})
    verifier = SnsVerifier(fetcher=fetcher, clock=lambda: NOW)
    result = outcome(lambda: verifier.verify(forge.body(document), headers=None))
    return (result[0], None) if result[0] == "ok" else result


def _reference_verify(identity: Identity, data: bytes, signature: bytes, version: str) -> Outcome:
    if not signature:
        return ("MalformedNotification", Reason.SIGNATURE_NOT_BASE64)  # "Signature is empty", before any RSA
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
    try:
        identity.key.public_key().verify(signature, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        return ("NotAuthentic", Reason.SIGNATURE_INVALID)
    return ("ok", None)


@pytest.mark.parametrize("version", ["1", "2"])
def test_the_signature_check_decides_as_public_key_verify(sns_identity: Identity, version: str) -> None:
    document = forge.envelope(sns_identity, version=version)
    data = string_to_sign(parse_sns_message(forge.body(document)))
    accepted = 0
    for name, signature in _signatures(sns_identity, data, version):
        expected = _reference_verify(sns_identity, data, signature, version)
        assert _verify_with(sns_identity, document, signature) == expected, name
        accepted += expected[0] == "ok"
    assert accepted == 2  # the genuine signature, and the same block signed by hand


def test_a_signature_with_its_leading_zero_byte_dropped_is_refused(sns_identity: Identity) -> None:
    # The RSA operation alone reads a 255-byte signature as the same number; RSA_verify refuses it: so do we.
    base = forge.envelope(sns_identity, version="1")
    for attempt in range(4096):
        document = forge.envelope(sns_identity, version="1", message=f"attempt {attempt}")
        signature = base64.b64decode(document["Signature"])
        if signature[0] == 0:
            break
    else:  # pragma: no cover (probability about 1e-7)
        pytest.skip("no signature with a leading zero byte found")
    assert base != document
    assert _verify_with(sns_identity, document, signature) == ("ok", None)
    assert _verify_with(sns_identity, document, signature[1:]) == ("NotAuthentic", Reason.SIGNATURE_INVALID)
    with pytest.raises(InvalidSignature):
        data = string_to_sign(parse_sns_message(forge.body(document)))
        sns_identity.key.public_key().verify(signature[1:], data, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signature_of_one_version_fails_under_the_other(sns_identity: Identity, version: str) -> None:
    document = forge.envelope(sns_identity, version=version)
    swapped = {**document, "SignatureVersion": "2" if version == "1" else "1"}
    fetcher = forge.SpyFetcher({CERT_URL: CertificateResponse(200, sns_identity.pem)})
    verifier = SnsVerifier(fetcher=fetcher, clock=lambda: NOW)
    verifier.verify(forge.body(document), headers=None)
    with pytest.raises(NotAuthentic) as refused:
        verifier.verify(forge.body(swapped), headers=None)
    assert refused.value.reason is Reason.SIGNATURE_INVALID
