"""Shared keys, certificates and fixture loading for the SNS tests (keys are made once per session)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_refunds.adapters.sns import CertificateResponse
from tests.unit.sns import forge


@dataclass(frozen=True)
class RealFixture:
    name: str
    body: bytes
    document: dict[str, Any]
    certificate_pem: bytes

    @property
    def cert_url(self) -> str:
        return str(self.document["SigningCertURL"])


def load_real_fixtures(directory: Path) -> list[RealFixture]:
    result = []
    for path in sorted(directory.glob("*.json")):
        raw = path.read_bytes()
        document = json.loads(raw)
        pem = (directory / document["SigningCertURL"].rsplit("/", 1)[1]).read_bytes()
        result.append(RealFixture(path.name, raw, document, pem))
    return result


@pytest.fixture(scope="session")
def real_fixtures(fixtures_dir: Path) -> list[RealFixture]:
    fixtures = load_real_fixtures(fixtures_dir / "sns")
    assert len(fixtures) == 7, "the shared SNS fixtures changed"
    return fixtures


@pytest.fixture(scope="session")
def sns_identity() -> forge.Identity:
    """Stands in for Amazon SNS: a certificate with the subject sns.amazonaws.com."""
    return forge.make_identity("sns.amazonaws.com")


@pytest.fixture(scope="session")
def attacker_identity() -> forge.Identity:
    return forge.make_identity("sns.attacker.example")


@pytest.fixture
def sns_spy(sns_identity: forge.Identity) -> forge.SpyFetcher:
    return forge.SpyFetcher({forge.CERT_URL: CertificateResponse(200, sns_identity.pem)})
