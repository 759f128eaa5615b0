"""Shared keys, certificates and fixture loading for the SNS tests (keys are made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from amazon_pay_refunds.adapters.sns import CertificateResponse
from tests.support import sns_forge as forge
from tests.support.sns_fixtures import RealFixture, load_real_fixtures


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
