"""Shared test setup: where the real protocol fixtures live, and no AWS credentials or network by accident."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from refunds_local.stack import LocalStack

REPO = Path(__file__).resolve().parent.parent
# The real, signed protocol fixtures are shared with the whole project, beside this repository.
FIXTURES = Path(os.environ.get("REFUNDS_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"protocol fixtures not found at {FIXTURES} (set REFUNDS_FIXTURES)")
    return FIXTURES


@pytest.fixture(autouse=True)
def _fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region so that no test can ever reach a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "amazon-pay-refunds")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AmazonPayRefunds")


@pytest.fixture(autouse=True)
def _iam_refusals_fail_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on a local stack fails when any of its functions was refused a call by its role (the refused
    action and function named), even when the code absorbed the refusal (a 500, a retry, manual action)."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack = request.getfixturevalue("stack")
    if not isinstance(stack, LocalStack):
        yield
        return
    stack.iam_refusals()  # an earlier test's are its own
    yield
    stack.assert_no_iam_refusals()
