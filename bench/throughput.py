"""Requests per second and latency of the RefundApi and IpnHandler handlers, in process.

The handlers are called as Lambda calls them (`lambda_handler(event, context)`, API Gateway REST proxy
events), one at a time, in one process, on moto's DynamoDB and Secrets Manager (mock_aws, in process) and
the Amazon Pay simulator served on 127.0.0.1 (throttling off, so Amazon's sandbox quotas do not set the
pace; refunds settle only when told). The environment is the template's (dummy values) plus the local
settings (simulator endpoint, the simulator's CA for IPNs); X-Ray is off (no daemon); logs and metrics
are written to /dev/null.

Each round, in this order, each loop bounded by a count and a time (whichever ends first):
  POST /refunds, new   - a new refund on a fresh capture (GetCaptureDetails + Refund at the simulator)
  POST /refunds, replay - the same bodies again (200, no Amazon call)
  GET /refunds/{id}    - the refunds just created
  (untimed: the simulator settles them; its SNS-signed IPNs are collected by a receiver on 127.0.0.1)
  IPN Pending          - the simulator's Pending IPN of each refund (already Pending from Refund's answer)
  IPN Completed        - its Completed IPN (the refund completes)
  IPN redelivered      - the Completed IPN again (SNS redelivery: a duplicate)
The IPN handler trusts the simulator's CA (REFUNDS_LOCAL_SNS_CA_PEM / REFUNDS_LOCAL_SNS_CERT_URL_PREFIX)
and fetches its signing certificate from the simulator over HTTP once (warm cache afterwards).
Figures: requests/s per round (min/median/max), p50 latency per round, p50/p99 over every request.
Rounds: 5 of at most 40 requests or 1.0 s per loop (--quick: 2 rounds of 15 requests or 0.5 s).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from amazon_pay_sim.receiver import IpnReceiver, Posted
from bench._lambda_env import REPO, functions
from bench._report import Options, Result, Row, figure
from bench._support import (
    ExternalClock,
    LambdaContext,
    api_event,
    environment,
    ipn_event,
    percentile,
    quiet_stdout,
)

TABLE = "bench-refunds"
SECRET = "bench/amazon-pay-credentials"  # noqa: S105 - a name, not a secret
LAMBDA_ONLY = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV", "AWS_LAMBDA_RUNTIME_API", "_HANDLER")


@dataclass
class Service:
    """The two handlers wired to moto and the simulator."""

    simulator: Any
    receiver: IpnReceiver
    refund_api: Callable[[dict[str, Any], Any], dict[str, Any]]
    ipn_handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    seller_id: str

    def call(self, event: dict[str, Any]) -> tuple[int, Any]:
        response = self.refund_api(event, LambdaContext(function_name="RefundApiFunction"))
        body = response.get("body")
        return int(response["statusCode"]), json.loads(body) if body else None

    def ipn(self, posted: Posted) -> tuple[int, Any]:
        response = self.ipn_handler(
            ipn_event(posted.body, posted.headers), LambdaContext(function_name="IpnHandlerFunction")
        )
        return int(response["statusCode"]), json.loads(response["body"])


@contextmanager
def in_process_service() -> Iterator[Service]:
    import boto3
    from moto import mock_aws

    from amazon_pay_refunds import runtime
    from amazon_pay_refunds.adapters.dynamodb import create_table
    from amazon_pay_sim import Simulator
    from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_SELLER_ID

    simulator = Simulator(settle_seconds=3600, throttling=False)
    handle = simulator.serve(host="127.0.0.1", port=0)
    receiver = IpnReceiver()
    simulator.set_ipn_url(receiver.url)
    variables = dict(functions()[0].variables)
    for name in LAMBDA_ONLY:
        variables.pop(name, None)
    variables.update(
        REFUNDS_TABLE=TABLE,
        AMAZON_PAY_CREDENTIALS_SECRET=SECRET,
        SELLER_IDS=DEFAULT_SELLER_ID,
        POWERTOOLS_TRACE_DISABLED="true",
        REFUNDS_LOCAL_AMAZON_PAY_ENDPOINT=handle.mws_url,
        REFUNDS_LOCAL_SNS_CA_PEM=simulator.ca_certificate_pem,
        REFUNDS_LOCAL_SNS_CERT_URL_PREFIX=simulator.certificate_url_prefix,
    )
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        with environment(variables, remove=LAMBDA_ONLY), mock_aws():
            boto3.DEFAULT_SESSION = None
            create_table(boto3.client("dynamodb"), TABLE)
            secret = {
                "default_seller_id": DEFAULT_SELLER_ID,
                "sellers": {
                    DEFAULT_SELLER_ID: {"access_key": DEFAULT_ACCESS_KEY, "secret_key": DEFAULT_SECRET_KEY}
                },
            }
            boto3.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps(secret))
            runtime.reset()
            refund_api = importlib.import_module("functions.refund_api.app")
            ipn_app = importlib.import_module("functions.ipn_handler.app")
            ipn_app.ipn_service.cache_clear()
            try:
                yield Service(
                    simulator, receiver, refund_api.lambda_handler, ipn_app.lambda_handler, DEFAULT_SELLER_ID
                )
            finally:
                ipn_app.ipn_service.cache_clear()
                runtime.reset()
                boto3.DEFAULT_SESSION = None
    finally:
        simulator.set_ipn_url(None)
        receiver.close()
        handle.shutdown()


@dataclass
class Measure:
    label: str
    rates: list[float] = field(default_factory=list)
    round_p50: list[float] = field(default_factory=list)
    own_p50: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    clock: ExternalClock | None = None
    answers: dict[str, int] = field(default_factory=dict)

    def loop(self, items: list[Any], call: Callable[[Any], str], seconds: float) -> list[Any]:
        """Call `call` on items until they or the time run out; returns the items done."""
        done: list[Any] = []
        round_latencies, own = [], []
        started = time.perf_counter()
        for item in items:
            external = self.clock.seconds if self.clock else 0.0
            begin = time.perf_counter()
            answer = call(item)
            spent = time.perf_counter() - begin
            round_latencies.append(spent * 1000)
            own.append((spent - ((self.clock.seconds if self.clock else 0.0) - external)) * 1000)
            self.answers[answer] = self.answers.get(answer, 0) + 1
            done.append(item)
            if time.perf_counter() - started >= seconds:
                break
        elapsed = time.perf_counter() - started
        if done:
            self.rates.append(len(done) / elapsed)
            self.round_p50.append(percentile(round_latencies, 0.5))
            self.own_p50.append(percentile(own, 0.5))
            self.latencies += round_latencies
        return done


def refund_body(capture_id: str, refund_id: str) -> dict[str, Any]:
    return {
        "refund_id": refund_id,
        "amazon_capture_id": capture_id,
        "amount": "12.50",
        "currency_code": "USD",
        "seller_refund_note": "Returned item",
        "soft_descriptor": "Returns",
        "metadata": {"order_id": "1001"},
    }


def run(options: Options) -> Result:
    rounds = options.pick_rounds(5, 2)
    count = 15 if options.quick else 40
    seconds = options.pick_seconds(1.0, 0.5)
    names = ["POST /refunds new", "POST /refunds replay", "GET /refunds/{id}"]
    names += ["IPN Pending", "IPN Completed", "IPN redelivered"]
    measures = {name: Measure(name) for name in names}
    amazon_calls: list[int] = []
    with quiet_stdout(), in_process_service() as service, ExternalClock() as clock:
        for measure in measures.values():
            measure.clock = clock
        sim = service.simulator
        # Warm the container (imports done; first Secrets Manager read, first certificate fetch).
        warm_capture = sim.create_capture("100.00", "USD")
        status, _ = service.call(
            api_event("POST", "/refunds", "/refunds", refund_body(warm_capture, "warm-1"))
        )
        assert status == 202, status
        sim.settle(everything=True)
        sim.wait_for_ipn_idle(timeout=30)
        for posted in service.receiver.take():
            service.ipn(posted)
        for index in range(rounds):
            tag = uuid.uuid4().hex[:6]
            bodies = [
                refund_body(sim.create_capture("100.00", "USD"), f"b{index}-{tag}-{n}") for n in range(count)
            ]

            def post(body: dict[str, Any]) -> str:
                return str(service.call(api_event("POST", "/refunds", "/refunds", body))[0])

            def get(body: dict[str, Any]) -> str:
                path = f"/refunds/{body['refund_id']}"
                status, answer = service.call(api_event("GET", "/refunds/{refund_id}", path))
                return f"{status} {answer.get('status') if isinstance(answer, dict) else ''}"

            before = len(sim.calls())
            created = measures["POST /refunds new"].loop(bodies, post, seconds)
            amazon_calls.append(len(sim.calls()) - before)
            amazon_calls[-1] = round(amazon_calls[-1] / max(1, len(created)))
            measures["POST /refunds replay"].loop(created, post, seconds)
            measures["GET /refunds/{id}"].loop(created, get, seconds)
            sim.settle(everything=True)
            sim.wait_for_ipn_idle(timeout=60)
            by_state: dict[str, list[Posted]] = {}
            for posted in service.receiver.take():
                by_state.setdefault(posted.state, []).append(posted)

            def deliver(posted: Posted) -> str:
                status, answer = service.ipn(posted)
                return f"{status} {answer.get('reason')}"

            measures["IPN Pending"].loop(by_state.get("Pending", []), deliver, seconds)
            completed = measures["IPN Completed"].loop(by_state.get("Completed", []), deliver, seconds)
            measures["IPN redelivered"].loop(completed, deliver, seconds)
    result = Result("throughput")
    bounds = f"{rounds} rounds, <= {count} req or {figure(seconds)} s per loop"
    case = f"in-process handlers, moto + simulator ({bounds})"
    for name in names:
        measure = measures[name]
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(measure.answers.items()))
        note = (
            f"p50 {figure(percentile(measure.latencies, 0.5))} ms, p99 "
            f"{figure(percentile(measure.latencies, 0.99))} ms over {len(measure.latencies)} requests"
        )
        result.rows.append(Row(case, f"{name}: requests/s", measure.rates or None, note, unit="req/s"))
        result.rows.append(
            Row(case, "  p50 latency per round", measure.round_p50 or None, answers, unit="ms")
        )
        result.rows.append(
            Row(case, "  p50 own time (minus moto & simulator)", measure.own_p50 or None, unit="ms")
        )
    result.notes.append(
        f"Amazon calls per new refund (simulator call log): {sorted(set(amazon_calls))} "
        "(GetCaptureDetails to open the capture's ledger, then Refund)"
    )
    result.notes.append(
        "own time = latency minus the time inside botocore calls (moto) and HTTP calls (the simulator): "
        "the handler's code, Powertools, validation, signing, serialisation; moto's transactions copy "
        "the table, so its share grows with the table and says nothing about DynamoDB's latency"
    )
    result.notes.append(
        "single-threaded in one process: moto and the simulator run here too, so these are the code's "
        "own costs plus local emulation, not AWS or Amazon latencies"
    )
    return result
