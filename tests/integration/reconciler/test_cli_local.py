"""`refunds --local` against a running `refunds-local`: it finds the stack through the state file that
`refunds-local` writes while it runs, and reads, lists and reconciles the stack's refunds."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from botocore.credentials import Credentials

from refunds_local.clients import Storefront
from refunds_local.state_file import read_state

BIN = Path(sys.executable).parent


def _command(script: str, module: str) -> list[str]:
    path = BIN / script
    return [str(path)] if path.exists() else [sys.executable, "-m", module]


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """`refunds-local` on ephemeral ports; (its URLs, the environment naming its state file)."""
    env = {**os.environ, "REFUNDS_LOCAL_STATE": str(tmp_path / "state.json")}
    process = subprocess.Popen(
        [
            *_command("refunds-local", "refunds_local.cli"),
            "--port",
            "0",
            "--sim-port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "Operators' CLI" not in text:
            line = process.stdout.readline()
            if not line:
                break
            text += line
        api = re.search(r"Storefront API and /ipn\s+(http://127\.0\.0\.1:\d+)", text)
        sim = re.search(r"Amazon Pay simulator\s+(http://127\.0\.0\.1:\d+)", text)
        key = re.search(r"x-api-key: (\S+?)\)", text)
        assert api and sim and key, text
        yield {"api": api.group(1), "sim": sim.group(1), "key": key.group(1)}, env
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert not (tmp_path / "state.json").exists(), "refunds-local left its state file behind"


def refunds(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command("refunds", "refunds_cli.main"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_refunds_local_finds_the_running_stack_and_its_refunds(
    local_stack: tuple[dict[str, str], dict[str, str]],
) -> None:
    urls, env = local_stack
    assert refunds(env, "list", "--local").stdout == "no open refunds\n"
    capture = requests.post(
        f"{urls['sim']}/simulator/captures", json={"amount": "20.00", "currency_code": "USD"}, timeout=10
    ).json()["amazon_capture_id"]
    # The storefront signs with the local user's keys the running stack wrote to its state file.
    state = read_state(Path(env["REFUNDS_LOCAL_STATE"]))
    assert state.storefront_authorization == "AWS_IAM"
    signer = Credentials(state.storefront_access_key_id, state.storefront_secret_access_key)
    answer = Storefront(urls["api"], urls["key"], credentials=signer, region=state.region).post_refund(
        {"refund_id": "ord-7", "amazon_capture_id": capture, "amount": "5.00", "currency_code": "USD"}
    )
    assert answer.status == 202, answer.body

    status = refunds(env, "status", "ord-7", "--local", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["amazon_capture_id"] == capture

    reconciled = refunds(env, "reconcile", "--local", "--json")
    assert reconciled.returncode == 0, reconciled.stderr
    assert json.loads(reconciled.stdout)["scan_complete"] is True


def test_refunds_local_without_a_running_stack_exits_1(tmp_path: Path) -> None:
    env = {**os.environ, "REFUNDS_LOCAL_STATE": str(tmp_path / "absent.json")}
    result = refunds(env, "list", "--local")
    assert result.returncode == 1 and "refunds-local" in result.stderr
