"""An independent client checks the simulator's API v2: Amazon's official Node.js SDK
(@amazonpay/amazon-pay-api-sdk-nodejs, pinned in tests/node/package-lock.json) creates and reads refunds over
HTTPS with both signing algorithms, and is refused with Amazon's error for a wrong key, a changed body under
the same idempotency key, and an over-refund. tests/node/check_simulator.js only records what the SDK got;
the assertions are here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_sim import Simulator
from amazon_pay_sim.server import ServerHandle
from tests.support.paths import REPO
from tests.support.pay_v2_keys import private_pem, public_pem

NODE_DIR = REPO / "tests" / "node"
SDK_DIR = NODE_DIR / "node_modules" / "@amazonpay" / "amazon-pay-api-sdk-nodejs"
NODE, NPM = shutil.which("node"), shutil.which("npm")

pytestmark = [
    pytest.mark.timeout(600),  # `npm ci` on a cold cache
    pytest.mark.skipif(
        NODE is None or NPM is None,
        reason="node and npm are not installed (CI has them): the Node SDK cannot run",
    ),
]

KEY_ID = "SANDBOX-ANODESDKKEY"  # the SDK uses /v2/... for it
LEGACY_KEY_ID = "ANODESDKLEGACY"  # and /sandbox/v2/... for this one (sandbox: true)
V2 = "AMZN-PAY-RSASSA-PSS-V2"


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    """The pinned SDK, installed with `npm ci` from the lock file when node_modules is missing."""
    if not SDK_DIR.is_dir():
        subprocess.run(
            [str(NPM), "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600,
            capture_output=True,
        )  # fmt: skip
    assert (SDK_DIR / "package.json").is_file()
    return SDK_DIR


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Simulator, ServerHandle, Path]]:
    sim = Simulator(settle_seconds=3600, throttling=False)
    sim.add_v2_key(KEY_ID, public_pem("node"))
    sim.add_v2_key(LEGACY_KEY_ID, public_pem("node-legacy"))
    handle = sim.serve(tls=True)
    assert handle.tls_certificate_pem is not None
    cert = tmp_path / "sim-tls.pem"
    cert.write_text(handle.tls_certificate_pem)
    try:
        yield sim, handle, cert
    finally:
        handle.shutdown()


def _run_node(
    node_sdk: Path, config: dict[str, Any], tmp_path: Path, cert: Path
) -> dict[str, dict[str, Any]]:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    # The SDK itself turns certificate checks off when given overrideServiceUrl; NODE_EXTRA_CA_CERTS makes the
    # simulator's self-signed certificate trusted anyway, so nothing depends on that.
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(cert)}
    done = subprocess.run(
        [str(NODE), str(NODE_DIR / "check_simulator.js"), str(config_file)],
        cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {step["name"]: step for step in json.loads(done.stdout)}


def test_the_official_node_sdk_creates_and_reads_refunds_and_is_refused_as_amazon_would(
    node_sdk: Path, served: tuple[Simulator, ServerHandle, Path], tmp_path: Path
) -> None:
    sim, handle, cert = served
    keys = {}
    for name in ("node", "node-legacy", "intruder"):
        keys[name] = tmp_path / f"{name}.pem"
        keys[name].write_text(private_pem(name))
    runs: list[dict[str, Any]] = [
        {"tag": "a", "key": {"id": KEY_ID, "privateKeyFile": str(keys["node"])}, "algorithm": None},
        {
            "tag": "b",
            "key": {"id": LEGACY_KEY_ID, "privateKeyFile": str(keys["node-legacy"])},
            "algorithm": V2,
        },
    ]
    for run in runs:
        run["chargeId"] = sim.create_charge("100.00", "USD")
        run["overChargeId"] = sim.create_charge("100.00", "USD")
    report = _run_node(
        node_sdk,
        {"host": f"127.0.0.1:{handle.port}", "wrongPrivateKeyFile": str(keys["intruder"]), "runs": runs},
        tmp_path,
        cert,
    )

    for run in runs:
        tag = run["tag"]
        created = report[f"{tag}:create"]
        assert created["status"] == 201, created
        refund = created["data"]
        assert (refund["chargeId"], refund["statusDetails"]["state"]) == (run["chargeId"], "RefundInitiated")
        assert refund["refundAmount"] == {"amount": "10.00", "currencyCode": "USD"}
        replay = report[f"{tag}:replay"]
        assert (replay["status"], replay["data"]) == (201, refund)
        read = report[f"{tag}:get-refund"]
        assert (read["status"], read["data"]["refundId"]) == (200, refund["refundId"])
        charge = report[f"{tag}:get-charge"]
        assert charge["status"] == 200
        assert charge["data"]["captureAmount"] == {"amount": "100.00", "currencyCode": "USD"}
        for step, status, code in [
            ("changed-body", 400, "DuplicateIdempotencyKey"),
            ("over-refund", 400, "TransactionAmountExceeded"),
            ("wrong-key", 401, "InvalidRequestSignature"),
        ]:
            answer = report[f"{tag}:{step}"]
            assert (answer["status"], answer["data"]["reasonCode"]) == (status, code), answer
        assert report[f"{tag}:up-to-the-cap"]["status"] == 201  # 115.00 = 100 + 15 %: the cap itself

    # What the SDK sent: both algorithms, both path forms, and its own (larger) set of signed headers.
    calls = sim.pay_v2.calls()
    by_key = {
        key: [c for c in calls if c["public_key_id"] == key and c["status"] < 300]
        for key in (KEY_ID, LEGACY_KEY_ID)
    }
    assert {c["algorithm"] for c in by_key[KEY_ID]} == {"AMZN-PAY-RSASSA-PSS"}
    assert {c["algorithm"] for c in by_key[LEGACY_KEY_ID]} == {V2}
    assert all(c["path"].startswith("/v2/") for c in by_key[KEY_ID])
    assert all(c["path"].startswith("/sandbox/v2/") for c in by_key[LEGACY_KEY_ID])
    assert all("user-agent" in c["signed_headers"] for c in by_key[KEY_ID] + by_key[LEGACY_KEY_ID])
    # Refunds the simulator holds: per run the first refund (created once despite the replay) and the 115.00.
    assert len(sim.pay_v2.refunds) == 4
