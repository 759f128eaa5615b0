"""A EmbeddedStack on ephemeral ports per test; the real handlers replaced where a test says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from refunds_local.stack import EmbeddedStack

from .handlers import Recorder

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "template.yaml"


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """template.yaml as cfn-lint reads it (an independent reader from the stack's own loader)."""
    loaded, matches = decode(str(TEMPLATE))
    assert not matches, matches
    assert loaded is not None
    return dict(loaded)


@pytest.fixture
def api_handler() -> Recorder:
    return Recorder(status=202, body={"answered": "refund-api"}, headers={"X-Test": "yes"})


@pytest.fixture
def ipn_handler() -> Recorder:
    return Recorder(status=200, body={"answered": "ipn"})


@pytest.fixture
def stack(api_handler: Recorder, ipn_handler: Recorder) -> Iterator[EmbeddedStack]:
    """The storefront API and /ipn answered by recording handlers; the real EventPublisher on the stream.
    The storefront routes in API-key mode (StorefrontAuthorization API_KEY, `refunds-local --api-key`);
    IAM authorization: test_sigv4.py."""
    overrides = {"RefundApiFunction": api_handler, "IpnHandlerFunction": ipn_handler}
    with EmbeddedStack(
        port=0,
        sim_port=0,
        handler_overrides=overrides,
        pump=False,
        parameters={"StorefrontAuthorization": "API_KEY"},
    ) as running:
        yield running
