"""`make demo` (`python -m refunds_local.demo`): the service end to end on the local stack (CONTRACT §9).

Starts a EmbeddedStack (ports 3000/8701 when free, else free ones), runs named scenarios over HTTP as a
storefront backend would, and prints each refund's timeline: status transitions with time and cause,
attempts with Amazon's ids, events published on the bus. Exits 0 only if every scenario ended as expected,
else 1, naming the failures. The handlers' own logs go to a file (its path is printed), not the screen.

A scenario is a function `(Demo) -> None` in SCENARIOS: it creates its captures at the simulator, calls the
API, checks the outcome with `demo.expect(...)` (a failed expectation ends the scenario as failed), and
names the refunds and captures whose timelines to print (`demo.show(...)`, `demo.show_capture(...)`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests

from .clients import Answer, SimulatorControl, Storefront, operator_of, storefront_of
from .stack import DEFAULT_PORT, DEFAULT_SIM_PORT, EmbeddedStack

SETTLE_SECONDS = 2.0  # Amazon settles a refund after this long, then posts its signed Completed IPN
WAIT_SECONDS = 20.0
FINAL = frozenset({"Completed", "Failed", "ResolvedOutOfBand"})


class ScenarioFailed(Exception):
    """A scenario did not end as expected (the message says what happened instead)."""


@dataclass
class Demo:
    """What a scenario works with: the storefront's and an operator's API clients (each signing with its
    own IAM user), the simulator, and what to show."""

    stack: EmbeddedStack
    storefront: Storefront
    amazon: SimulatorControl
    operator: Storefront
    refunds: list[str] = field(default_factory=list)
    captures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _sequence: int = 0

    def refund_id(self, order: int) -> str:
        self._sequence += 1
        return f"ord-{order}-r{self._sequence}"

    def capture(self, amount: str, currency_code: str = "USD", *, state: str = "Completed") -> str:
        capture_id = self.amazon.create_capture(amount, currency_code, state=state)
        self.note(f"Amazon: capture {capture_id} of {amount} {currency_code} ({state})")
        return capture_id

    def request_refund(
        self, refund_id: str, capture_id: str, amount: str, currency_code: str = "USD", **extra: Any
    ) -> Answer:
        body = {"refund_id": refund_id, "amazon_capture_id": capture_id, "amount": amount}
        body |= {"currency_code": currency_code, **extra}
        answer = self.storefront.post_refund(body)
        outcome = answer.error_code or (answer.body or {}).get("status")
        self.note(f"POST /refunds {refund_id} {amount} {currency_code} -> {answer.status} {outcome}")
        return answer

    def wait_for(self, refund_id: str, *statuses: str) -> dict[str, Any]:
        refund = self.storefront.wait_for_status(refund_id, set(statuses), timeout=WAIT_SECONDS)
        self.expect(
            refund.get("status") in statuses,
            f"{refund_id} is {refund.get('status')}, expected {' or '.join(statuses)}",
        )
        return refund

    def expect(self, condition: bool, failure: str) -> None:
        if not condition:
            raise ScenarioFailed(failure)

    def expect_answer(self, answer: Answer, status: int, code: str | None = None) -> None:
        got = f"{answer.status} {answer.error_code or ''}".strip()
        want = f"{status} {code or ''}".strip()
        self.expect(answer.status == status and answer.error_code == code, f"answered {got}, expected {want}")

    def show(self, *refund_ids: str) -> None:
        self.refunds.extend(refund_ids)

    def show_capture(self, capture_id: str) -> None:
        self.captures.append(capture_id)

    def note(self, line: str) -> None:
        self.notes.append(line)


# --- scenarios ------------------------------------------------------------------------------------------


def full_refund(demo: Demo) -> None:
    """A whole capture refunded: Pending at once, Completed through Amazon's signed IPN."""
    capture_id = demo.capture("100.00")
    refund_id = demo.refund_id(1001)
    demo.show(refund_id)
    answer = demo.request_refund(refund_id, capture_id, "100.00")
    demo.expect_answer(answer, 202)
    demo.wait_for(refund_id, "Completed")
    ledger = demo.storefront.get_capture(capture_id).body
    demo.expect((ledger["completed"], ledger["available"]) == ("100.00", "0.00"), f"ledger {ledger}")


def partial_refunds(demo: Demo) -> None:
    """Three partial refunds of one capture, all completed; the ledger keeps the rest available."""
    capture_id = demo.capture("90.00")
    refund_ids = [demo.refund_id(1002) for _ in range(3)]
    demo.show(*refund_ids)
    for refund_id, amount in zip(refund_ids, ("30.00", "25.00", "20.00"), strict=True):
        demo.expect_answer(demo.request_refund(refund_id, capture_id, amount), 202)
    for refund_id in refund_ids:
        demo.wait_for(refund_id, "Completed")
    ledger = demo.storefront.get_capture(capture_id).body
    demo.expect((ledger["completed"], ledger["available"]) == ("75.00", "15.00"), f"ledger {ledger}")
    demo.show_capture(capture_id)


def over_refund_refused(demo: Demo) -> None:
    """A refund that would overdraw the capture is refused at once (422), before Amazon is asked."""
    capture_id = demo.capture("50.00")
    first, second = demo.refund_id(1003), demo.refund_id(1003)
    demo.show(first)
    demo.expect_answer(demo.request_refund(first, capture_id, "40.00"), 202)
    refused = demo.request_refund(second, capture_id, "20.00")
    demo.expect_answer(refused, 422, "RefundExceedsCapture")
    demo.note(f"  refused: {refused.body['error']['details']}")
    demo.expect(demo.storefront.get_refund(second).status == 404, f"{second} was stored")
    demo.wait_for(first, "Completed")


def idempotent_replay(demo: Demo) -> None:
    """The same request again (a storefront retrying after a timeout) answers 200 with the same refund."""
    capture_id = demo.capture("40.00")
    refund_id = demo.refund_id(1004)
    demo.show(refund_id)
    first = demo.request_refund(refund_id, capture_id, "15.00")
    again = demo.request_refund(refund_id, capture_id, "15.00")
    demo.expect_answer(first, 202)
    demo.expect_answer(again, 200)
    same = again.body["attempts"][0]["amazon_refund_id"] == first.body["attempts"][0]["amazon_refund_id"]
    demo.expect(same, "the replay names another Amazon refund")
    demo.wait_for(refund_id, "Completed")
    at_amazon = demo.amazon.capture(capture_id)["refunds"]
    demo.expect(len(at_amazon) == 1, f"Amazon made {len(at_amazon)} refunds")


def idempotency_conflict(demo: Demo) -> None:
    """The same refund_id with another body is a conflict (409); the first refund is unchanged."""
    capture_id = demo.capture("40.00")
    refund_id = demo.refund_id(1005)
    demo.show(refund_id)
    demo.expect_answer(demo.request_refund(refund_id, capture_id, "10.00"), 202)
    demo.expect_answer(demo.request_refund(refund_id, capture_id, "12.00"), 409, "IdempotencyConflict")
    refund = demo.wait_for(refund_id, "Completed")
    demo.expect(refund["amount"] == "10.00", f"the amount became {refund['amount']}")


def amazon_rejected(demo: Demo) -> None:
    """Amazon declines (AmazonRejected): manual action at once, no retry; an operator resolves it."""
    capture_id = demo.capture("60.00")
    refund_id = demo.refund_id(1006)
    demo.show(refund_id)
    note = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "AmazonRejected"}})
    demo.expect_answer(demo.request_refund(refund_id, capture_id, "25.00", seller_refund_note=note), 202)
    refund = demo.wait_for(refund_id, "ManualActionRequired")
    demo.expect(refund["reason_code"] == "AmazonRejected", f"reason {refund['reason_code']}")
    refused = demo.storefront.resolve(refund_id, "gift_card", "sent a 25.00 gift card")
    demo.note(f"POST /refunds/{refund_id}/resolve by the storefront -> {refused.status} {refused.error_code}")
    demo.expect_answer(refused, 403, "ACCESS_DENIED")
    resolved = demo.operator.resolve(refund_id, "gift_card", "sent a 25.00 gift card")
    demo.note(f"POST /refunds/{refund_id}/resolve gift_card -> {resolved.status} {resolved.body['status']}")
    demo.expect_answer(resolved, 200)
    demo.expect(resolved.body["status"] == "ResolvedOutOfBand", f"resolved to {resolved.body['status']}")


def external_a_to_z_refund(demo: Demo) -> None:
    """Amazon refunds the buyer itself (an A-to-z claim): detected from its IPN, counted on the ledger."""
    capture_id = demo.capture("80.00")
    refund_id = demo.refund_id(1007)
    demo.show(refund_id)
    demo.show_capture(capture_id)
    demo.expect_answer(demo.request_refund(refund_id, capture_id, "20.00"), 202)
    demo.amazon.external_refund(capture_id, "30.00", "AmazonA-ZRefund")
    demo.note("Amazon: A-to-z guarantee refund of 30.00 on the capture")
    deadline = time.monotonic() + WAIT_SECONDS
    while demo.storefront.get_capture(capture_id).body["external"] != "30.00":
        demo.expect(time.monotonic() < deadline, "the A-to-z refund never reached the ledger")
        time.sleep(0.1)
    refused = demo.request_refund(demo.refund_id(1007), capture_id, "40.00")
    demo.expect_answer(refused, 422, "RefundExceedsCapture")
    demo.wait_for(refund_id, "Completed")
    ledger = demo.storefront.get_capture(capture_id).body
    expected = ("20.00", "30.00", "30.00")
    got = (ledger["completed"], ledger["external"], ledger["available"])
    demo.expect(got == expected, f"ledger completed/external/available {got}, expected {expected}")
    detected = [
        e for e in capture_events(demo.stack, capture_id) if e["detail-type"] == "External Refund Detected"
    ]
    demo.expect(len(detected) == 1, f"{len(detected)} External Refund Detected events")


def _processing_failure_note(times: int | None = None) -> str:
    """Our simulator's extension (Amazon documents no refund ProcessingFailure simulation)."""
    spec: dict[str, Any] = {"State": "Declined", "ReasonCode": "ProcessingFailure"}
    if times is not None:
        spec["Times"] = times
    return json.dumps({"SandboxSimulation": spec})


def processing_failure_retried(demo: Demo) -> None:
    """ProcessingFailure once: after the wait and the eligibility checks, one retry completes."""
    capture_id = demo.capture("70.00")
    refund_id = demo.refund_id(1008)
    demo.show(refund_id)
    note = _processing_failure_note(times=1)
    demo.expect_answer(demo.request_refund(refund_id, capture_id, "35.00", seller_refund_note=note), 202)
    refund = demo.wait_for(refund_id, "Completed")
    attempts = [(a["refund_reference_id"], a["state"]) for a in refund["attempts"]]
    expected = [(f"{refund_id}_1", "Declined"), (f"{refund_id}_2", "Completed")]
    demo.expect(attempts == expected, f"attempts {attempts}, expected {expected}")
    ledger = demo.storefront.get_capture(capture_id).body
    demo.expect(ledger["completed"] == "35.00", f"ledger completed {ledger['completed']}, expected 35.00")


def processing_failure_twice(demo: Demo) -> None:
    """ProcessingFailure on the retry too: manual action, the buyer is refunded another way."""
    capture_id = demo.capture("70.00")
    refund_id = demo.refund_id(1009)
    demo.show(refund_id)
    note = _processing_failure_note()
    demo.expect_answer(demo.request_refund(refund_id, capture_id, "15.00", seller_refund_note=note), 202)
    refund = demo.wait_for(refund_id, "ManualActionRequired")
    states = [a["state"] for a in refund["attempts"]]
    demo.expect(states == ["Declined", "Declined"], f"attempts {states}, expected two declined")
    published = [e["detail-type"] for e in demo.stack.events(refund_id)]
    demo.expect("Refund Requires Manual Action" in published, f"events {published}")


# --- Amazon Pay API v2 (Checkout v2) refunds beside v1 ones: the same service, `amazon_charge_id` -------


def _charge(demo: Demo, amount: str, currency_code: str = "USD") -> str:
    """A captured v2 charge at the simulator (its control API: Amazon's checkout is out of scope)."""
    answer = requests.post(
        f"{demo.stack.sim_url}/simulator/charges",
        json={"amount": amount, "currency_code": currency_code},
        timeout=WAIT_SECONDS,
    )
    answer.raise_for_status()
    charge_id = str(answer.json()["amazon_charge_id"])
    demo.note(f"Amazon (API v2): charge {charge_id} of {amount} {currency_code} (Captured)")
    return charge_id


def _request_v2_refund(demo: Demo, refund_id: str, charge_id: str, amount: str, **extra: Any) -> Answer:
    body = {"refund_id": refund_id, "amazon_charge_id": charge_id, "amount": amount, "currency_code": "USD"}
    answer = demo.storefront.post_refund(body | extra)
    outcome = answer.error_code or (answer.body or {}).get("status")
    demo.note(f"POST /refunds {refund_id} {amount} USD (v2 charge) -> {answer.status} {outcome}")
    return answer


def _charge_ledger(demo: Demo, charge_id: str) -> dict[str, Any]:
    ledger: dict[str, Any] = demo.storefront.request("GET", f"/charges/{charge_id}").body
    return ledger


def v2_full_refund(demo: Demo) -> None:
    """API v2: a whole charge refunded; Completed through Amazon's signed v2 IPN and a Get Refund."""
    charge_id = _charge(demo, "100.00")
    refund_id = demo.refund_id(2001)
    demo.show(refund_id)
    demo.expect_answer(_request_v2_refund(demo, refund_id, charge_id, "100.00"), 202)
    demo.wait_for(refund_id, "Completed")
    ledger = _charge_ledger(demo, charge_id)
    demo.expect((ledger["completed"], ledger["available"]) == ("100.00", "0.00"), f"ledger {ledger}")


def v2_partial_refunds(demo: Demo) -> None:
    """API v2: two partial refunds of one charge beside a v1 refund of a capture, all completed."""
    charge_id, capture_id = _charge(demo, "90.00"), demo.capture("90.00")
    v2_ids = [demo.refund_id(2002) for _ in range(2)]
    v1_id = demo.refund_id(2002)
    demo.show(*v2_ids, v1_id)
    for refund_id, amount in zip(v2_ids, ("30.00", "25.00"), strict=True):
        demo.expect_answer(_request_v2_refund(demo, refund_id, charge_id, amount), 202)
    demo.expect_answer(demo.request_refund(v1_id, capture_id, "40.00"), 202)
    for refund_id in (*v2_ids, v1_id):
        demo.wait_for(refund_id, "Completed")
    ledger = _charge_ledger(demo, charge_id)
    demo.expect((ledger["completed"], ledger["available"]) == ("55.00", "35.00"), f"ledger {ledger}")


def v2_over_refund_refused(demo: Demo) -> None:
    """API v2: a refund that would overdraw the charge is refused at once (422), before Amazon is asked."""
    charge_id = _charge(demo, "50.00")
    first, second = demo.refund_id(2003), demo.refund_id(2003)
    demo.show(first)
    demo.expect_answer(_request_v2_refund(demo, first, charge_id, "40.00"), 202)
    demo.expect_answer(_request_v2_refund(demo, second, charge_id, "20.00"), 422, "RefundExceedsCapture")
    demo.expect(demo.storefront.get_refund(second).status == 404, f"{second} was stored")


def v2_processing_failure_retried(demo: Demo) -> None:
    """API v2: ProcessingFailure once (our simulation code with its Times extension): after the wait and the
    eligibility checks, the retry, under a new idempotency key, completes."""
    charge_id = _charge(demo, "70.00")
    refund_id = demo.refund_id(2004)
    demo.show(refund_id)
    note = _processing_failure_note(times=1)
    demo.expect_answer(_request_v2_refund(demo, refund_id, charge_id, "35.00", seller_refund_note=note), 202)
    refund = demo.wait_for(refund_id, "Completed")
    attempts = [(a["refund_reference_id"], a["state"]) for a in refund["attempts"]]
    expected = [(f"{refund_id}_1", "Declined"), (f"{refund_id}_2", "Completed")]
    demo.expect(attempts == expected, f"attempts {attempts}, expected {expected}")
    ledger = _charge_ledger(demo, charge_id)
    demo.expect(ledger["completed"] == "35.00", f"ledger completed {ledger['completed']}, expected 35.00")


def v2_amazon_rejected(demo: Demo) -> None:
    """API v2: Amazon declines (AmazonRejected): manual action at once, no retry."""
    charge_id = _charge(demo, "60.00")
    refund_id = demo.refund_id(2005)
    demo.show(refund_id)
    note = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "AmazonRejected"}})
    demo.expect_answer(_request_v2_refund(demo, refund_id, charge_id, "25.00", seller_refund_note=note), 202)
    refund = demo.wait_for(refund_id, "ManualActionRequired")
    demo.expect(refund["reason_code"] == "AmazonRejected", f"reason {refund['reason_code']}")
    demo.expect(len(refund["attempts"]) == 1, f"{len(refund['attempts'])} attempts, expected 1")


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Demo], None]

    @property
    def description(self) -> str:
        return (self.run.__doc__ or "").strip()


SCENARIOS: list[Scenario] = [
    Scenario("full refund", full_refund),
    Scenario("partial refunds", partial_refunds),
    Scenario("over-refund refused", over_refund_refused),
    Scenario("idempotent replay", idempotent_replay),
    Scenario("idempotency conflict", idempotency_conflict),
    Scenario("AmazonRejected -> manual action", amazon_rejected),
    Scenario("ProcessingFailure -> retry -> Completed", processing_failure_retried),
    Scenario("ProcessingFailure twice -> manual action", processing_failure_twice),
    Scenario("external A-to-z refund", external_a_to_z_refund),
    Scenario("v2: full refund", v2_full_refund),
    Scenario("v2: partial refunds beside v1", v2_partial_refunds),
    Scenario("v2: over-refund refused", v2_over_refund_refused),
    Scenario("v2: ProcessingFailure -> retry -> Completed", v2_processing_failure_retried),
    Scenario("v2: AmazonRejected -> manual action", v2_amazon_rejected),
]


# --- running and printing -------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: Scenario
    seconds: float
    failure: str | None
    timelines: list[str]


def run_scenario(stack: EmbeddedStack, scenario: Scenario) -> Outcome:
    demo = Demo(stack, storefront_of(stack), SimulatorControl(stack.sim_url), operator_of(stack))
    started = time.monotonic()
    failure: str | None = None
    try:
        scenario.run(demo)
    except ScenarioFailed as failed:
        failure = str(failed)
    except Exception as error:  # a crash is a failure of this scenario, not of the demo
        failure = f"{type(error).__name__}: {error}"
    seconds = time.monotonic() - started
    stack.drain()
    refused = stack.iam_refusals()
    if refused and failure is None:
        failure = "refused by IAM: " + "; ".join(f"AccessDenied: {call.describe()}" for call in refused)
    timelines = [f"    {line}" for line in demo.notes]
    timelines += [line for refund_id in demo.refunds for line in refund_timeline(stack, demo, refund_id)]
    timelines += [line for capture_id in demo.captures for line in capture_timeline(stack, demo, capture_id)]
    return Outcome(scenario, seconds, failure, timelines)


def _clock(timestamp: str | None) -> str:
    """ "2024-05-01T12:00:01.234Z" -> "12:00:01.234"."""
    if not timestamp:
        return "?"
    return timestamp.partition("T")[2].rstrip("Z") or timestamp


def refund_timeline(stack: EmbeddedStack, demo: Demo, refund_id: str) -> list[str]:
    answer = demo.storefront.get_refund(refund_id)
    if answer.status != 200:
        return [f"  refund {refund_id}: not stored ({answer.status})"]
    refund = answer.body
    lines = [
        f"  refund {refund_id}  {refund['amount']} {refund['currency_code']}  "
        + (f"charge {refund['amazon_charge_id']} (v2)" if refund.get("amazon_charge_id") else "")
        + (f"capture {refund['amazon_capture_id']}" if refund.get("amazon_capture_id") else "")
        + f"  -> {refund['status']}"
        + (f" ({refund['reason_code']})" if refund.get("reason_code") else "")
    ]
    for entry in refund["history"]:
        moved = f"{entry['from'] or '':>20} -> {entry['to']:<21}"
        caller = f"  by {entry['caller'].rsplit('/', 1)[-1]}" if entry.get("caller") else ""
        lines.append(f"    {_clock(entry['at'])}  {moved} {entry['cause']}{caller}")
    for attempt in refund["attempts"]:
        reason = f" ({attempt['reason_code']})" if attempt.get("reason_code") else ""
        lines.append(
            f"    attempt {attempt['attempt']}: {attempt['refund_reference_id']} -> Amazon "
            f"{attempt['amazon_refund_id'] or '(no answer)'}  {attempt['state']}{reason}"
        )
    for event in stack.events(refund_id, drain=False):
        lines.append(f"    event {event['time']}  {event['detail-type']}")
    return lines


def capture_events(stack: EmbeddedStack, capture_id: str) -> list[dict[str, Any]]:
    return [
        event
        for event in stack.events()
        if event["detail"].get("amazon_capture_id") == capture_id and "refund_id" not in event["detail"]
    ]


def capture_timeline(stack: EmbeddedStack, demo: Demo, capture_id: str) -> list[str]:
    ledger = demo.storefront.get_capture(capture_id).body or {}
    lines = [
        f"  capture {capture_id}  captured {ledger.get('captured')}  completed {ledger.get('completed')}  "
        f"in flight {ledger.get('in_flight')}  external {ledger.get('external')}  "
        f"available {ledger.get('available')} {ledger.get('currency_code')}"
    ]
    for event in capture_events(stack, capture_id):
        detail = event["detail"]
        lines.append(
            f"    event {event['time']}  {event['detail-type']}: {detail.get('refund_type')} "
            f"{detail.get('amount')} ({detail.get('amazon_refund_id')})"
        )
    return lines


def _port_or_free(port: int) -> int:
    """`port` when nothing listens there, else 0 (the system picks a free one)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


@contextlib.contextmanager
def _handler_output_to(path: Path) -> Iterator[TextIO]:
    """The handlers' logs and metrics (stdout/stderr of the Lambdas in process) go to `path`."""
    with (
        open(path, "w", encoding="utf-8") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        yield log


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m refunds_local.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--log-file", type=Path, help="where the handlers' logs go (default: a temp file)")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    unknown = set(args.scenario or ()) - {s.name for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; known: {[s.name for s in SCENARIOS]}")
    log_path = args.log_file or Path(tempfile.mkstemp(prefix="refunds-demo-", suffix=".log")[1])
    out = sys.stdout
    started = time.monotonic()
    stack = EmbeddedStack(
        port=_port_or_free(DEFAULT_PORT),
        sim_port=_port_or_free(DEFAULT_SIM_PORT),
        throttling=False,
        settle_seconds=SETTLE_SECONDS,
    )
    outcomes: list[Outcome] = []
    with _handler_output_to(log_path):
        try:
            stack.start()
        except OSError as error:
            print(f"demo: cannot start the local stack: {error}", file=out)
            return 1
        try:
            print(f"local stack: API {stack.api_url}, Amazon Pay simulator {stack.sim_url}", file=out)
            print(stack.iam_banner(), file=out)
            print(
                f"API authorization {stack.storefront_authorization}: the storefront signs (SigV4) as "
                f"{stack.callers['storefront'].arn}, resolve is signed by {stack.callers['operator'].arn}",
                file=out,
            )
            print(f"(the Lambda handlers' logs: {log_path})", file=out, flush=True)
            for scenario in chosen:
                outcome = run_scenario(stack, scenario)
                outcomes.append(outcome)
                verdict = "ok" if outcome.failure is None else f"FAILED: {outcome.failure}"
                print(f"\n== {scenario.name}: {scenario.description}", file=out)
                print("\n".join(outcome.timelines), file=out)
                print(f"  -> {verdict} ({outcome.seconds:.1f} s)", file=out, flush=True)
        finally:
            stack.stop()
    failed = [o for o in outcomes if o.failure is not None]
    total = time.monotonic() - started
    print(
        f"\n{len(outcomes) - len(failed)} of {len(outcomes)} scenarios as expected in {total:.1f} s", file=out
    )
    for outcome in failed:
        print(f"  FAILED {outcome.scenario.name}: {outcome.failure}", file=out)
    if stack.iam is not None:
        print("\nAWS calls each role made in this demo (action: resources), every one allowed:", file=out)
        print("\n".join(f"  {line}" for line in stack.iam_usage().splitlines()), file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
