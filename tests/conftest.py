"""Shared test setup: where the real protocol fixtures live, and no AWS credentials or network by accident."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from refunds_local.iam import SESSION as IAM_SESSION
from refunds_local.iam import IamGate
from tests.support.paths import FIXTURES, REPO

# Folders whose every test is `slow` (they start the local stack's servers): `make check` skips them.
SLOW_FOLDERS = (REPO / "tests" / "e2e", REPO / "tests" / "integration" / "local")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in SLOW_FOLDERS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
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
    """A test that runs handlers with their roles (a local stack, or `iam_gate` under mock_aws) fails when
    any of them was refused a call (the refused action and function named), even when the code absorbed
    the refusal (a 500, a retry, manual action)."""
    names = [name for name in ("stack", "iam_gate") if name in request.fixturenames]
    if not names:
        yield
        return
    enforcer = request.getfixturevalue(names[0])
    if hasattr(enforcer, "assert_no_iam_refusals"):  # a EmbeddedStack
        enforcer.iam_refusals()  # an earlier test's are its own
        yield
        enforcer.assert_no_iam_refusals()
    elif isinstance(enforcer, IamGate):
        enforcer.take_refusals()
        yield
        refused = enforcer.take_refusals()
        assert not refused, (
            "calls refused by IAM (the function's role in template.yaml lacks them):\n"
            + "\n".join(f"  AccessDenied: {call.describe()}" for call in refused)
        )
    else:
        yield


def _whole_suite(config: pytest.Config) -> bool:
    """`pytest` / `make test` on every test (no paths, -k or -m): only then is an unused grant an error."""
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and not config.option.markexpr
        and not config.option.deselect
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not IAM_SESSION.grants:
        return
    report = IAM_SESSION.report()
    target = REPO / ".aws-sam" / "iam-usage.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report + "\n", encoding="utf-8")
    if exitstatus == 0 and _whole_suite(session.config) and IAM_SESSION.unused():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if not IAM_SESSION.grants:
        return
    unused = IAM_SESSION.unused()
    terminalreporter.section("IAM: grants no call used" if unused else "IAM")
    for grant in unused:
        terminalreporter.write_line(f"unused grant: {grant.describe()}")
    if unused and _whole_suite(terminalreporter.config):
        terminalreporter.write_line("every grant must be used by some test: remove it from template.yaml")
    terminalreporter.write_line(f"measured per function: {REPO / '.aws-sam' / 'iam-usage.txt'}")
