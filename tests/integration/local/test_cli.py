"""`refunds-local`: starts everything, prints where, serves until interrupted, stops cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

SCRIPT = Path(sys.executable).parent / "refunds-local"


def test_refunds_local_serves_until_interrupted() -> None:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "refunds_local.cli"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--sim-port", "0", "--api-key", "cli-test-key", "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            banner.append(line)
            if "Ctrl-C stops it." in line:
                break
        text = "".join(banner)
        api = re.search(r"Storefront API and /ipn\s+(http://127\.0\.0\.1:\d+)", text)
        sim = re.search(r"Amazon Pay simulator\s+(http://127\.0\.0\.1:\d+)", text)
        assert api and sim, text
        assert "x-api-key: cli-test-key" in text
        assert f"{sim.group(1)}/simulator/captures" in text  # how to create a capture

        refused = requests.get(f"{api.group(1)}/refunds/r1", timeout=10)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "INVALID_API_KEY"
        capture = requests.post(
            f"{sim.group(1)}/simulator/captures", json={"amount": "10.00", "currency_code": "USD"}, timeout=10
        )
        assert capture.status_code == 201

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "refunds-local: stopped." in output
        for url in (api.group(1), sim.group(1)):
            try:
                requests.get(url, timeout=2)
            except requests.ConnectionError:
                continue
            raise AssertionError(f"{url} still answers after the stop")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_refunds_local_reports_a_busy_port() -> None:
    import socket

    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "refunds_local.cli"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*command, "--port", "0", "--sim-port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert "cannot start" in result.stderr


def test_refunds_local_without_an_api_key_takes_sigv4_from_the_users_it_prints(tmp_path: Path) -> None:
    """The template's default (StorefrontAuthorization AWS_IAM): the printed storefront keys sign; an
    unsigned call is refused; the state file holds the same keys, readable by its owner only."""
    import json
    import os
    import stat

    from botocore.credentials import Credentials

    from refunds_local.sigv4 import sign

    state = tmp_path / "state.json"
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "refunds_local.cli"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--sim-port", "0", "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "REFUNDS_LOCAL_STATE": str(state)},
    )
    try:
        assert process.stdout is not None
        banner = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            banner.append(line)
            if "Ctrl-C stops it." in line:
                break
        text = "".join(banner)
        api = re.search(r"Storefront API and /ipn\s+(http://127\.0\.0\.1:\d+)", text)
        keys = re.search(r"storefront .*\n\s+AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", text)
        api_key = re.search(r"x-api-key: (\S+?)\)", text)
        assert api and keys and api_key, text
        url = f"{api.group(1)}/refunds/ord-404-r1"

        unsigned = requests.get(url, headers={"x-api-key": api_key.group(1)}, timeout=10)
        assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (
            403,
            "MISSING_AUTHENTICATION_TOKEN",
        )
        credentials = Credentials(keys.group(1), keys.group(2))
        headers = sign("GET", url, {"x-api-key": api_key.group(1)}, b"", credentials, "us-east-1")
        answer = requests.get(url, headers=headers, timeout=10)
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "RefundNotFound")

        saved = json.loads(state.read_text())
        assert saved["storefront_authorization"] == "AWS_IAM"
        assert (saved["storefront_access_key_id"], saved["storefront_secret_access_key"]) == keys.groups()
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
