"""The official Amazon Pay Python SDK's IPN verifier, timed in the SDK's own virtualenv (a child process).

Run by `bench/ipn_verify.py` as `.venv-bench-sdk/bin/python bench/_sdk_ipn.py <spec JSON>`; prints one
JSON object on stdout. Imports nothing from this project: the SDK's virtualenv does not have it.

The SDK (`amazon_pay.ipn_handler.IpnHandler`) keeps no certificate cache: every `authenticate()` checks
the TopicArn header, checks the SigningCertURL (https, host `^sns\\.[a-zA-Z0-9\\-]{3,}\\.amazonaws\\.com`,
path `*.pem`), downloads the certificate with `urllib.request.urlopen`, loads it with pyOpenSSL and
calls `OpenSSL.crypto.verify(..., "sha1")`. It checks no time at all (neither the message's Timestamp
nor the certificate's validity), so the expired fixture certificates need no clock travel.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib import request
from urllib.parse import urlsplit


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second of `operation`, run for about `seconds` (at least 20 calls)."""
    calls, started = 0, time.perf_counter()
    while True:
        operation()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and calls >= 20:
            return calls / elapsed


def main(spec: dict[str, Any]) -> dict[str, Any]:
    warnings.simplefilter("ignore")  # pyOpenSSL warns that crypto.verify is deprecated: that is the point
    from amazon_pay import ipn_handler
    from OpenSSL import crypto

    if not hasattr(crypto, "verify"):
        raise RuntimeError("this pyOpenSSL has no crypto.verify: the SDK's verifier cannot work with it")

    # The certificate download, redirected to the bench's local server. The SDK validates the genuine
    # SigningCertURL first (`_validate_cert_url` runs unchanged on https://sns.<region>.amazonaws.com/...),
    # then calls `request.urlopen(url=request.Request(signing_cert_url))` through the `request` name it
    # imported from urllib. That name is swapped for a stand-in whose `urlopen` fetches the same file name
    # from http://127.0.0.1:<port>/ with the real urllib: one real HTTP GET per IPN, as the SDK does, but
    # on loopback (far cheaper than the HTTPS round trip to AWS it makes in production).
    local_base = spec["certificate_base_url"]
    fetched: list[str] = []

    def local_urlopen(url: request.Request, *args: Any, **kwargs: Any) -> Any:
        genuine = url.full_url
        fetched.append(genuine)
        name = urlsplit(genuine).path.rsplit("/", 1)[1]
        return request.urlopen(local_base + name, *args, timeout=5, **kwargs)  # noqa: S310 (loopback)

    ipn_handler.request = types.SimpleNamespace(Request=request.Request, urlopen=local_urlopen)  # type: ignore[attr-defined]

    body = Path(spec["fixture"]).read_bytes()
    envelope = json.loads(body)
    headers = {
        "X-Amz-Sns-Message-Type": envelope["Type"],
        "X-Amz-Sns-Message-Id": envelope["MessageId"],
        "X-Amz-Sns-Topic-Arn": envelope["TopicArn"],
    }

    verifications = [0]

    def sdk() -> object:
        verifications[0] += 1
        return ipn_handler.IpnHandler(body, headers).authenticate()

    # It really verifies: the genuine IPN passes, the same IPN with one changed byte of Message fails.
    assert sdk() is True
    tampered = body.replace(b"<State>Completed", b"<State>Completee", 1)
    assert tampered != body
    try:
        ipn_handler.IpnHandler(tampered, headers).authenticate()
    except ValueError:
        pass
    else:
        raise RuntimeError("the SDK accepted a tampered IPN: it is not verifying")
    if not fetched or urlsplit(fetched[0]).hostname is None:
        raise RuntimeError("the SDK did not fetch its certificate")

    fetched.clear()
    verifications[0] = 0
    rates = [rate(sdk, spec["seconds"]) for _ in range(spec["rounds"])]
    import OpenSSL

    return {
        "rates": rates,
        "median": statistics.median(rates),
        "fetches_per_verification": len(fetched) / verifications[0],
        "versions": {
            "python": sys.version.split()[0],
            "amazon_pay": _version("amazon_pay"),
            "pyOpenSSL": OpenSSL.__version__,
            "cryptography": _version("cryptography"),
        },
    }


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
