"""The console script with --ipn-url and --ca-dir: a separate process can verify its IPNs from ca.pem."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

from amazon_pay_refunds.adapters.sns import SnsVerifier, trust_from_environment
from amazon_pay_sim.receiver import IpnReceiver
from tests.support.sim_ipn import verify_posted

SCRIPT = Path(sys.executable).parent / "amazon-pay-sim"


def test_the_cli_posts_ipns_verifiable_with_its_persisted_ca(tmp_path: Path, receiver: IpnReceiver) -> None:
    ca_dir = tmp_path / "ca"
    process = subprocess.Popen(
        [str(SCRIPT), "--port", "0", "--no-throttling", "--ipn-url", receiver.url, "--ca-dir", str(ca_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
        capture = requests.post(
            f"{url}/simulator/captures", json={"amount": "20.00", "currency_code": "USD"}, timeout=5
        ).json()["amazon_capture_id"]
        requests.post(
            f"{url}/simulator/captures/{capture}/external-refund",
            json={"amount": "5.00", "refund_type": "AmazonA-ZRefund"},
            timeout=5,
        ).raise_for_status()
        deadline = time.monotonic() + 10
        while not receiver.posts and time.monotonic() < deadline:
            time.sleep(0.05)
        (posted,) = receiver.posts
        # What the local stack's IPN handler does: trust from the environment, the CA read from ca-dir.
        verifier = SnsVerifier(
            trust_from_environment(
                {
                    "REFUNDS_LOCAL_SNS_CA_PEM": str(ca_dir / "ca.pem"),
                    "REFUNDS_LOCAL_SNS_CERT_URL_PREFIX": url + "/",
                }
            )
        )
        verified = verify_posted(posted, verifier)
        assert verified.notification is not None
        assert posted.state == "Completed"
        assert requests.get(f"{url}/simulator/ca.pem", timeout=5).text == (ca_dir / "ca.pem").read_text()
    finally:
        process.terminate()
        process.wait(timeout=10)
