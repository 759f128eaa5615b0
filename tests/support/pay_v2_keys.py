"""Test RSA keys for API v2 signing, generated once per test session (never a real key)."""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@cache
def _generated(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key(name: str = "merchant") -> rsa.RSAPrivateKey:
    """The same key for the same name within a test session."""
    return _generated(name)


def private_pem(name: str = "merchant") -> str:
    return (
        private_key(name)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode("ascii")
    )


def public_pem(name: str = "merchant") -> str:
    return (
        private_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
