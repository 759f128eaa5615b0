"""IPN verification throughput: our verifier with a warm certificate cache vs the raw RSA verification.

Run: `.venv/bin/python bench/ipn_verify.py [--rounds N] [--seconds S]`. For each real fixture it prints
verifications per second (min / median / max over the rounds) of `SnsVerifier.verify` (body parsing,
URL, certificate validity, freshness and the signature, certificate cached) and of a bare
`public_key.verify` on the same signature and string to sign, and the ratio of the medians.
The two are measured in alternating rounds so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from amazon_pay_refunds.sns import CertificateResponse, SnsVerifier, parse_sns_message, string_to_sign

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("REFUNDS_FIXTURES", REPO.parent / "shared" / "fixtures")) / "sns"
CASES = ("amazon-pay-refund-completed-eu-2017.json", "aws-sns-hello-sigv2-2022.json")
TARGET_RATIO = 0.7


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second of `operation`, run in batches for about `seconds`."""
    batch, calls, started = 200, 0, time.perf_counter()
    while True:
        for _ in range(batch):
            operation()
        calls += batch
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls / elapsed


def bench_case(name: str, rounds: int, seconds: float) -> float:
    body = (FIXTURES / name).read_bytes()
    message = parse_sns_message(body)
    certificates: dict[str, int] = {}

    def fetch(url: str) -> CertificateResponse:
        certificates[url] = certificates.get(url, 0) + 1
        return CertificateResponse(200, (FIXTURES / url.rsplit("/", 1)[1]).read_bytes())

    verifier = SnsVerifier(fetcher=fetch, clock=lambda: message.timestamp)
    verifier.verify(body, headers=None)  # warms the cache: the one fetch
    public_key = verifier.certificate_for(message.signing_cert_url).public_key
    signature, data = message.signature, string_to_sign(message)
    algorithm = hashes.SHA1 if message.signature_version == "1" else hashes.SHA256

    def ours() -> object:
        return verifier.verify(body, headers=None)

    def raw() -> object:
        public_key.verify(signature, data, padding.PKCS1v15(), algorithm())
        return None

    ours_rates, raw_rates = [], []
    for _ in range(rounds):
        ours_rates.append(rate(ours, seconds))
        raw_rates.append(rate(raw, seconds))
    assert sum(certificates.values()) == 1, "the warm cache fetched again"
    ratio = statistics.median(ours_rates) / statistics.median(raw_rates)
    print(f"{name} (SignatureVersion {message.signature_version}, {len(body)} bytes)")
    for label, rates in (
        ("SnsVerifier.verify, warm cache", ours_rates),
        ("raw public_key.verify", raw_rates),
    ):
        print(
            f"  {label:32s} min {min(rates):9.0f}/s  median {statistics.median(rates):9.0f}/s"
            f"  max {max(rates):9.0f}/s"
        )
    print(f"  ratio of medians {ratio:.2f} (target >= {TARGET_RATIO})")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of one round")
    args = parser.parse_args(argv)
    for name in CASES:
        bench_case(name, args.rounds, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
