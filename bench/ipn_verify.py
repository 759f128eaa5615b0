"""IPN verification throughput: our verifier vs the raw RSA verification vs the official Amazon Pay SDK.

Run: `.venv/bin/python bench/ipn_verify.py [--rounds N] [--seconds S] [--no-sdk]` (or `python -m bench`).
For each real fixture it prints verifications per second (min / median / max over the rounds) of
  1. `SnsVerifier.verify(body, headers=None)` with a warm certificate cache: body parsing with the
     duplicate-key check, SigningCertURL policy (cached), certificate validity and message freshness at
     the message's own time, and the signature;
  2. the raw RSA verification alone: `public_key.verify(signature, string_to_sign, PKCS1v15(), SHA1())`
     on the same bytes, padding and hash objects built once (the cheapest way to call it);
  3. the official Amazon Pay Python SDK (`amazon_pay.ipn_handler.IpnHandler(body, headers).authenticate()`)
     on the same IPN, for the SignatureVersion 1 Amazon Pay IPN only: the SDK knows no SignatureVersion 2
     and parses `Message` as Amazon Pay JSON. Current pyOpenSSL has no `crypto.verify`, so the SDK
     runs in a virtualenv of its own, `.venv-bench-sdk` (created here on first run with pip, pinned to a
     pyOpenSSL that still has it), as a child process (bench/_sdk_ipn.py) that reports JSON. The SDK
     downloads the certificate for every IPN; it gets it from a local HTTP server on 127.0.0.1 started
     here (see _sdk_ipn.py for how its fetch is pointed there). It checks no time, so none is faked.
Then the ratios of the medians: ours/SDK (goal >= 20) and ours/raw, for information only: the parser is
plain code that a reviewer can check at a glance, with no goal of its own against the bare RSA check.
Ours and raw run in alternating batches of 100 calls so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from amazon_pay_refunds.adapters.sns import (
    CertificateResponse,
    SnsVerifier,
    parse_sns_message,
    string_to_sign,
)

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: `python bench/ipn_verify.py`
    sys.path.insert(0, str(REPO))

from bench._report import Options, Result, Row, print_results  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "sns"
AMAZON_PAY_IPN = "amazon-pay-refund-completed-eu-2017.json"
CASES = (AMAZON_PAY_IPN, "aws-sns-hello-sigv2-2022.json")
SDK_GOAL = 20.0

SDK_VENV = REPO / ".venv-bench-sdk"
# amazon_pay 2.7.1 is the SDK this project's .venv has; pyOpenSSL 24.2.1 still has crypto.verify, and
# cryptography 43 is the newest it accepts (it pins cryptography < 44).
SDK_REQUIREMENTS = ("amazon_pay==2.7.1", "pyOpenSSL==24.2.1", "cryptography==43.0.3")
SDK_CHILD = Path(__file__).resolve().parent / "_sdk_ipn.py"


def interleaved_rates(
    operations: list[Callable[[], object]], rounds: int, seconds: float, batch: int = 100
) -> list[list[float]]:
    """Calls per second of each operation in each round, the operations timed in alternating batches.

    A round lasts about `seconds`: batch of the first, batch of the second, ... again, each batch timed on
    its own. Whatever else the machine does then hits every operation alike, which keeps their ratio
    steady even when their absolute rates are not.
    """
    rates: list[list[float]] = [[] for _ in operations]
    for _ in range(rounds):
        spent = [0.0] * len(operations)
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for index, operation in enumerate(operations):
                begin = time.perf_counter()
                for _ in range(batch):
                    operation()
                spent[index] += time.perf_counter() - begin
            calls += batch
        for index, total in enumerate(spent):
            rates[index].append(calls / total)
    return rates


def bench_ours_and_raw(name: str, rounds: int, seconds: float) -> tuple[Row, Row, str]:
    body = (FIXTURES / name).read_bytes()
    message = parse_sns_message(body)
    fetches: list[str] = []

    def fetch(url: str) -> CertificateResponse:
        fetches.append(url)
        return CertificateResponse(200, (FIXTURES / url.rsplit("/", 1)[1]).read_bytes())

    # The message's own time: the fixture certificates have expired since.
    verifier = SnsVerifier(fetcher=fetch, clock=lambda: message.timestamp)
    verifier.verify(body, headers=None)  # warms the cache: the one fetch
    public_key = verifier.certificate_for(message.signing_cert_url).public_key
    algorithm = hashes.SHA1() if message.signature_version == "1" else hashes.SHA256()  # noqa: S303
    # partial objects: no Python frame between the timing loop and either call.
    ours = functools.partial(verifier.verify, body, headers=None)
    raw = functools.partial(
        public_key.verify, message.signature, string_to_sign(message), padding.PKCS1v15(), algorithm
    )

    ours_rates, raw_rates = interleaved_rates([ours, raw], rounds, seconds)
    assert len(fetches) == 1, "the warm cache fetched again"
    case = f"{name} (SigV{message.signature_version}, {len(body)} B)"
    return (
        Row(case, "ours: SnsVerifier.verify, warm cache", ours_rates),
        Row(case, "raw: public_key.verify", raw_rates),
        case,
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def certificate_server(directory: Path) -> Iterator[str]:
    """http://127.0.0.1:<port>/ serving `directory` from a thread, for the SDK child's downloads."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def sdk_python() -> Path:
    """The SDK virtualenv's interpreter, creating the virtualenv first if needed; RuntimeError if not."""
    python = SDK_VENV / "bin" / "python"
    marker = SDK_VENV / ".bench-requirements"
    wanted = "\n".join(SDK_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"creating {SDK_VENV.name} for the official SDK ({', '.join(SDK_REQUIREMENTS)}) ...", flush=True)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(SDK_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *SDK_REQUIREMENTS],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"`{' '.join(step[:4])} ...` failed: {last[0]}")
    marker.write_text(wanted)
    return python


def bench_sdk(name: str, rounds: int, seconds: float) -> dict[str, Any]:
    python = sdk_python()
    with certificate_server(FIXTURES) as base_url:
        spec = {
            "fixture": str(FIXTURES / name),
            "certificate_base_url": base_url,
            "rounds": rounds,
            "seconds": seconds,
        }
        done = subprocess.run(
            [str(python), str(SDK_CHILD), json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=120 + 4 * rounds * seconds,
            check=False,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"the SDK child failed: {last[0]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def collect(rounds: int = 7, seconds: float = 0.5, *, sdk: bool = True) -> Result:
    result = Result("ipn_verify")
    for name in CASES:
        ours, raw, case = bench_ours_and_raw(name, rounds, seconds)
        result.rows += [ours, raw]
        ratio = ours.median / raw.median
        result.notes.append(f"{case}: ours/raw {ratio:.3f} (information: no goal)")
        if name != AMAZON_PAY_IPN:
            result.rows.append(Row(case, "official SDK", None, "n/a: the SDK supports SigV1 Amazon Pay only"))
            continue
        if not sdk:
            result.rows.append(Row(case, "official SDK", None, "skipped (--no-sdk)"))
            continue
        try:
            report = bench_sdk(name, rounds, seconds)
        except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as error:
            result.rows.append(Row(case, "official SDK", None, "NOT MEASURED"))
            result.notes.append(f"{case}: official SDK NOT MEASURED: {error}")
            continue
        versions = report["versions"]
        sdk_row = Row(
            case,
            "official SDK: IpnHandler.authenticate",
            report["rates"],
            f"amazon_pay {versions['amazon_pay']}, pyOpenSSL {versions['pyOpenSSL']}, "
            f"{report['fetches_per_verification']:.0f} local cert GET per IPN",
        )
        result.rows.append(sdk_row)
        ratio = ours.median / sdk_row.median
        verdict = "meets" if ratio >= SDK_GOAL else "BELOW"
        result.notes.append(f"{case}: ours/SDK {ratio:.1f} ({verdict} goal >= {SDK_GOAL:.0f})")
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of one round")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK (no virtualenv)")


def run(options: Options) -> Result:
    """`python -m bench`: 7 rounds of 0.5 s (--quick: 3 of 0.25 s)."""
    return collect(options.pick_rounds(7, 3), options.pick_seconds(0.5, 0.25), sdk=options.sdk)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    print_results([collect(args.rounds, args.seconds, sdk=not args.no_sdk)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
