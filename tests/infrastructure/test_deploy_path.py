"""The deploy path works the first time: docs/DEPLOY.md names only what exists, `make build` finds Python
3.13 or says what is missing, and the credentials secret is named after the stack so stacks never collide."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from refunds_local.stack import EmbeddedStack, local_stack_id
from refunds_local.template import load_template, resources, substitute

REPO = Path(__file__).resolve().parents[2]
DEPLOY = (REPO / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
README = (REPO / "README.md").read_text(encoding="utf-8")
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


def _secret_name(template: dict[str, Any], stack_name: str, stack_uuid: str) -> str:
    name = resources(template, "AWS::SecretsManager::Secret")["CredentialsSecret"]["Properties"]["Name"]
    stack_id = f"arn:aws:cloudformation:eu-west-1:111122223333:stack/{stack_name}/{stack_uuid}"
    return substitute(name, {"AWS::StackName": stack_name, "AWS::StackId": stack_id})


# --- the credentials secret ------------------------------------------------------------------------------


def test_the_credentials_secret_is_named_after_the_stack_and_its_id(template: dict[str, Any]) -> None:
    name = _secret_name(template, "shop-refunds", "51af3dc0-da77-11e4-872e-1234567db123")
    assert name == "shop-refunds/amazon-pay-credentials-1234567db123"


def test_two_stacks_and_a_redeploy_after_delete_get_different_secrets(template: dict[str, Any]) -> None:
    first = _secret_name(template, "shop-refunds", "51af3dc0-da77-11e4-872e-1234567db123")
    other_stack = _secret_name(template, "shop-refunds-eu", "51af3dc0-da77-11e4-872e-1234567db123")
    redeployed = _secret_name(template, "shop-refunds", "8e1b2c44-0c2d-11f0-9a1b-0a1b2c3d4e5f")
    assert len({first, other_stack, redeployed}) == 3


def test_no_parameter_names_the_secret_and_the_functions_get_its_arn(template: dict[str, Any]) -> None:
    assert not any("Secret" in name for name in template["Parameters"])
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["AMAZON_PAY_CREDENTIALS_SECRET"] == {"Ref": "CredentialsSecret"}
    assert template["Outputs"]["CredentialsSecretArn"]["Value"] == {"Ref": "CredentialsSecret"}


def test_the_local_stack_names_its_secret_as_the_template_does(template: dict[str, Any]) -> None:
    stack = EmbeddedStack(port=0, sim_port=0, stack_name="refunds-local-two")
    stack_id = local_stack_id("refunds-local-two", stack.region)
    expected = substitute(
        resources(template, "AWS::SecretsManager::Secret")["CredentialsSecret"]["Properties"]["Name"],
        {"AWS::StackName": "refunds-local-two", "AWS::StackId": stack_id},
    )
    assert stack.secret_name == expected
    assert stack.secret_name.startswith("refunds-local-two/amazon-pay-credentials-")


# --- docs/DEPLOY.md names only what exists -----------------------------------------------------------------


def _table_first_column(document: str, header: str) -> list[str]:
    """The backticked names in the first column of the table whose header row starts with `header`."""
    lines = document.split(f"| {header} |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [name for line in lines for name in re.findall(r"`([^`]+)`", line.split("|")[1])]


def test_every_parameter_the_guide_explains_is_in_the_template_and_none_is_missing(
    template: dict[str, Any],
) -> None:
    explained = set(_table_first_column(DEPLOY, "parameter"))
    assert explained == set(template["Parameters"])


def test_every_output_the_guide_uses_is_in_the_template(template: dict[str, Any]) -> None:
    listed = set(_table_first_column(DEPLOY, "output"))
    used = set(re.findall(r"\$\(output (\w+)\)", DEPLOY))
    assert used and used <= listed
    assert listed == set(template["Outputs"]) - {"AmazonPayRegion", "AmazonPaySandbox", "SellerIds"}


def test_every_make_target_the_docs_name_exists() -> None:
    targets = set(re.findall(r"^([a-z0-9-]+):", MAKEFILE, flags=re.MULTILINE))
    named = set(re.findall(r"\bmake ([a-z0-9-]+)", DEPLOY + README))
    assert named and named <= targets, named - targets


def test_the_sam_the_guide_runs_is_the_one_the_makefile_installs() -> None:
    assert re.search(r"^SAM := \$\(SAM_VENV\)/bin/sam$", MAKEFILE, flags=re.MULTILINE)
    assert "SAM_VENV := .venv-sam" in MAKEFILE
    assert ".venv-sam/bin/sam deploy --guided" in DEPLOY


def test_the_secret_value_the_guide_stores_is_what_the_code_reads() -> None:
    from amazon_pay_refunds.adapters.mws.credentials import parse_credentials_secret

    [value] = re.findall(r"--secret-string '([^']+)'", DEPLOY)
    book = parse_credentials_secret(value)
    assert book.default_seller_id == "A1EXAMPLE"


# --- make build ------------------------------------------------------------------------------------------


def test_make_build_says_what_is_missing_without_python_3_13() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "build", "PYTHON313="],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "no Python 3.13 found" in done.stderr and "PYTHON313=" in done.stderr


def test_make_build_puts_the_python_3_13_it_found_first_on_sams_path() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "build", "PYTHON313=/opt/python-3.13/bin/python3.13"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert 'PATH="/opt/python-3.13/bin/:$PATH"' in done.stdout and "/bin/sam build" in done.stdout
