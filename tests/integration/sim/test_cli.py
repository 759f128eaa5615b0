"""The console script: listens where it says, serves, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import requests

SCRIPT = Path(sys.executable).parent / "amazon-pay-sim"


def test_amazon_pay_sim_prints_where_it_listens_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "--port", "0", "--no-throttling", "--settle-seconds", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("amazon-pay-sim listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[-1].strip()
        response = requests.post(
            f"{url}/simulator/captures", json={"amount": "1.00", "currency_code": "USD"}, timeout=5
        )
        assert response.status_code == 201
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
