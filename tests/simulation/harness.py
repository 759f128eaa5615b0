"""One seed of the simulation: setup, a chaos phase of scheduler steps, quiescence, the invariants.

The scheduler's every choice comes from `random.Random(seed)`; time is virtual; the trace lists every step
and every injected fault, so a failing seed is replayed with `python -m tests.simulation SEED`.

Step kinds (chaos phase): new storefront requests (some over-refunding, some with Amazon's simulation
strings: AmazonRejected, ProcessingFailure with Times 1/2/always), exact duplicates, conflicting bodies for a
refund_id, storefront retries after a 5xx or a crash, resuming any suspended invocation (so invocations
interleave at every DynamoDB call, Amazon call and fault hook), IPN deliveries (reordered, duplicated,
dropped, delayed by not being picked, redelivered after a 5xx), Amazon faults (500, 503, throttle, timeout,
accept-then-timeout on Refund/GetRefundDetails/GetCaptureDetails), A-to-z/chargeback/BuyerCanceled/Seller
Central refunds (Completed or Pending; also already on captures before their ledger opens), the seller's ERP
calling Refund directly with its own reference ids and with ones shaped like ours (`{refund_id}_{n}` of live
and final refunds), capture closures, reconciler runs, stream → event publisher pumps, RetryWorkflow steps,
operator resolutions, and time advancing (Amazon settling refunds). Crashes: a fault hook point of the request
path raises Crash; any DynamoDB write may crash or fail before or after it executes.

API v2 beside v1: Amazon Pay v2 charges (K0, K1) are refunded by the same storefront (`amazon_charge_id`),
under the same chaos: CreateRefund/GetRefund/GetCharge faults (every kind above), v2 IPNs (REFUND, no state:
the handler reads the refund) lost, duplicated and reordered like v1's, refunds
others made on a charge (untyped, so each forbids the ProcessingFailure retry; also before the ledger opens),
and the AmazonRejected/ProcessingFailure declines (the v1 SandboxSimulation note becomes
`x-amz-pay-simulation-code`; v2 has no "Times": a ProcessingFailure charge declines every attempt).
Refunds others made on a charge are `Refunded` at once, or (their own random stream, 40 %) left
`RefundInitiated` to settle later, a quarter of those `Declined`: their IPNs are lost, duplicated and
reordered like the others. The service learns of one still `RefundInitiated` only from its IPN (Get
Charge's refundedAmount leaves it out), so while none of its IPNs was answered 200 the storefront takes no
new reservation on that charge (`World.invisible_by_others`), and R1 counts it only once it was knowable.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from moto import mock_aws

from amazon_pay_refunds.api.http_errors import error_response
from amazon_pay_refunds.core.lifecycle import reservation_state
from amazon_pay_refunds.core.models import PaymentApi, RefundStatus, qualified_id
from amazon_pay_refunds.use_cases.refund_requests import RefundRequest
from amazon_pay_sim.pay_v2 import OPERATIONS as V2_OPERATIONS
from amazon_pay_sim.simulator import FAULT_KINDS
from amazon_pay_sim.state import MwsError

from .asl import Execution
from .cooperative import Crash, Task
from .invariants import Snapshot, check_always, check_call_log, check_final
from .world import Ipn, World

AMAZON_REJECTED = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected"}}'
PROCESSING_FAILURE_TIMES = (
    '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"ProcessingFailure", "Times": %d}}'
)
PROCESSING_FAILURE_ALWAYS = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"ProcessingFailure"}}'
NOTES: tuple[tuple[str, str | None, int], ...] = (
    ("plain", "Returned item", 55),
    ("none", None, 10),
    ("AmazonRejected", AMAZON_REJECTED, 10),
    ("PF-Times1", PROCESSING_FAILURE_TIMES % 1, 13),
    ("PF-Times2", PROCESSING_FAILURE_TIMES % 2, 7),
    ("PF-always", PROCESSING_FAILURE_ALWAYS, 5),
)
DEFAULT_STEPS = 50
QUIESCENCE_ROUNDS = 160
QUIESCENCE_STEP_SECONDS = 300.0
# Function timeouts (template.yaml): 25 s globally, RetrySteps 40 s, Reconciler 60 s.
LAMBDA_TIMEOUT = 25.0
RETRY_STEPS_TIMEOUT = 40.0
RECONCILER_TIMEOUT = 60.0
REPLAY = ".venv/bin/python -m tests.simulation {seed}"


@dataclass
class SeedResult:
    seed: int
    trace: list[str]
    violations: list[str]
    mix: Counter[str]
    refunds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    stale_externals: bool = False
    steps: int = 0

    @property
    def replay(self) -> str:
        command = REPLAY.format(seed=self.seed)
        if self.steps != DEFAULT_STEPS:
            command += f" --steps {self.steps}"
        return command + (" --stale-externals" if self.stale_externals else "")

    @property
    def ok(self) -> bool:
        return not self.violations

    def report(self) -> str:
        lines = [f"seed {self.seed}: {len(self.violations)} invariant violation(s)"]
        lines += [f"  VIOLATION {v}" for v in self.violations]
        lines.append(f"replay: {self.replay}")
        lines.append("trace:")
        lines += [f"  {line}" for line in self.trace]
        return "\n".join(lines)


def _weighted(rng: random.Random, options: list[tuple[str, float]]) -> str:
    total = sum(w for _, w in options if w > 0)
    pick = rng.random() * total
    for name, weight in options:
        if weight <= 0:
            continue
        pick -= weight
        if pick < 0:
            return name
    return options[-1][0]


class Simulation:
    def __init__(self, seed: int, steps: int, *, stale_externals: bool = False) -> None:
        self.seed = seed
        self.steps = steps
        self.stale_externals = stale_externals
        self.claimed: set[str] = set()
        self.trace: list[str] = []
        settle = random.Random(seed * 7919 + 1).choice([45.0, 300.0, 1800.0, 3600.0])
        self.world = World(seed, self.log, settle_seconds=settle)
        self.rng = self.world.rng
        self.clock = self.world.clock
        self.chaos = self.world.chaos
        self.violations: list[str] = []
        self.histories: dict[str, tuple[Any, ...]] = {}
        self.bodies: dict[str, RefundRequest] = {}
        self.storefront_retries: list[tuple[float, RefundRequest]] = []
        self.captures: list[str] = []
        self.charges: list[str] = []  # API v2
        self.next_refund = 0
        self.step_number = 0
        self.log(f"seed {seed}: Amazon settles refunds after {settle:.0f}s")

    # -- trace --

    def log(self, line: str) -> None:
        self.trace.append(line)

    def at(self) -> str:
        return f"[{self.step_number:03d} t={self.clock.elapsed:7.1f}]"

    # -- setup --

    def setup(self) -> None:
        sim = self.world.simulator
        for index in range(3):
            amount = self.rng.choice(["100.00", "60.00", "250.00"])
            state = "Completed" if index < 2 or self.rng.random() < 0.8 else "Pending"
            capture = sim.create_capture(amount, "USD", state=state)
            self.captures.append(capture)
            self.log(f"capture C{index} {capture} {amount} USD {state}")
            if state == "Completed" and self.rng.random() < 0.4:
                self.refunds_before_the_ledger(capture, Decimal(amount))
        for index in range(2):
            amount = self.rng.choice(["100.00", "60.00", "250.00"])
            charge = sim.create_charge(amount, "USD")
            self.charges.append(charge)
            self.log(f"charge K{index} {charge} {amount} USD Captured (API v2)")
            if self.rng.random() < 0.4:
                self.charge_refunds_before_the_ledger(charge, Decimal(amount))

    def charge_refunds_before_the_ledger(self, charge_id: str, charged: Decimal) -> None:
        """Refunds others made on a v2 charge before this service first sees it (untyped): the ledger's
        opening counts them through Get Charge's refundedAmount."""
        for _ in range(self.rng.choice([1, 1, 2])):
            amount = (charged * Decimal(self.rng.randint(5, 30)) / 100).quantize(Decimal("0.01"))
            state, decline = self._pending_by_others()
            made = self.world.simulator.charge_external_refund(
                charge_id, str(amount), state=state, decline_reason=decline
            )
            self.world.foreign_refunds.add(str(made["refundId"]))
            self.chaos.count(f"before-ledger:v2-external:{state}" + (f":{decline}" if decline else ""))
            name = self.capture_name(charge_id)
            self.log(f"  before the ledger: refund of {amount} by others ({state}) on {name}")

    def _pending_by_others(self) -> tuple[str, str | None]:
        """The state a refund by others on a v2 charge is made in, from its own random stream: mostly
        `Refunded` at once; sometimes `RefundInitiated`, settling later (now and then `Declined`)."""
        rng = self.world.pending_by_others_rng
        if rng.random() >= 0.4:
            return "Refunded", None
        return "RefundInitiated", ("AmazonRejected" if rng.random() < 0.25 else None)

    def refunds_before_the_ledger(self, capture_id: str, captured: Decimal) -> None:
        """Refunds already on a capture when this service first sees it: Amazon's (A-to-z, chargeback,
        buyer cancel), Seller Central's, the ERP's; some still Pending. Nothing claims the capture: the
        ledger's opening reads them."""
        sim = self.world.simulator
        for _ in range(self.rng.choice([1, 1, 2])):
            amount = (captured * Decimal(self.rng.randint(5, 30)) / 100).quantize(Decimal("0.01"))
            state = "Pending" if self.rng.random() < 0.35 else "Completed"
            kind = _weighted(
                self.rng,
                [
                    ("AmazonA-ZRefund", 4),
                    ("Chargeback", 1),
                    ("SellerInitiated", 2),
                    ("BuyerCanceled", 1),
                    ("ERP", 2),
                ],
            )
            if kind == "ERP":
                reference = f"erp-{self.seed}-{self.rng.randint(1, 10**6)}"
                made = sim.seller_refund(
                    capture_id, reference, str(amount), seller_refund_note="ERP adjustment"
                )
                self.world.foreign_references.add(reference)
                state = "Pending"
            else:
                made = sim.external_refund(capture_id, str(amount), kind, state=state)
            self.world.foreign_refunds.add(str(made["amazon_refund_id"]))
            self.chaos.count(f"before-ledger:{kind}:{state}")
            self.log(
                f"  before the ledger: {kind} refund of {amount} ({state}) on {self.capture_name(capture_id)}"
            )

    def capture_name(self, capture_id: str) -> str:
        if capture_id in self.charges:
            return f"K{self.charges.index(capture_id)}"
        return f"C{self.captures.index(capture_id)}"

    def ledger_id(self, payment_id: str) -> str:
        """The ledger's id of a capture or (API v2) charge."""
        return qualified_id(PaymentApi.V2, payment_id) if payment_id in self.charges else payment_id

    def payment_amount(self, payment_id: str) -> Decimal:
        sim = self.world.simulator
        if payment_id in self.charges:
            return sim.pay_v2.charges[payment_id].amount
        return sim.market.captures[payment_id].amount

    def committed_at_amazon(self, payment_id: str) -> Decimal:
        """Pending and Completed refunds at Amazon on the capture or charge (anyone's). On a v2 charge also
        the refunds by others Amazon declined: the service keeps counting one it recorded while it was
        `RefundInitiated` until it learns of the decline (its IPN, or a survey's re-read; it may never), so
        that money is not offered again (less room than the service may have: the safe side)."""
        sim = self.world.simulator
        if payment_id in self.charges:
            pay_v2 = sim.pay_v2
            ids = pay_v2.charges[payment_id].refund_ids
            return sum(
                (
                    pay_v2.refunds[i].amount
                    for i in ids
                    if pay_v2.refunds[i].state != "Declined" or pay_v2.refunds[i].idempotency_key is None
                ),
                Decimal(0),
            )
        return sim.market.committed_total(sim.market.captures[payment_id])

    # -- tasks --

    def start(
        self,
        name: str,
        body: Callable[[], str],
        on_done: Callable[[Task], None] | None = None,
        *,
        timeout: float = LAMBDA_TIMEOUT,
    ) -> None:
        task = self.world.scheduler.spawn(name, body)
        task.on_done = on_done  # type: ignore[attr-defined]
        task.deadline = self.clock.elapsed + timeout
        self.log(f"{self.at()} spawn {task}")
        self.resume(task)

    def resume(self, task: Task) -> None:
        task.resume()
        if task.done:
            self.finished(task)
        else:
            self.log(f"    {task} paused at {task.label}")
            self.enforce_timeouts()

    def enforce_timeouts(self) -> None:
        """The Lambda runtime ends invocations that ran past their function's timeout (a crash)."""
        if not self.chaos.enabled:
            return
        for task in self.world.scheduler.live():
            if task.deadline is not None and self.clock.elapsed > task.deadline:
                self.chaos.count("lambda:timeout")
                self.log(f"    {task} killed: Lambda timeout (at {task.label})")
                task.kill("Lambda timeout")
                self.finished(task)

    def finished(self, task: Task) -> None:
        if isinstance(task.error, Crash):
            outcome = f"CRASHED ({task.error})"
        elif task.error is not None:
            outcome = f"raised {type(task.error).__name__}: {task.error}"
        else:
            outcome = str(task.result)
        self.log(f"    {task} done: {outcome}")
        on_done = getattr(task, "on_done", None)
        if on_done is not None:
            on_done(task)
        self.world.scheduler.forget_done()

    # -- storefront --

    def new_request(self) -> RefundRequest | None:
        open_captures = [
            c
            for c in self.captures + self.charges
            if c not in self.claimed and not self.world.invisible_by_others(c)
        ]
        if not open_captures:
            return None
        self.next_refund += 1
        refund_id = f"rf-{self.next_refund}"
        capture = self.rng.choice(open_captures)
        note_name = _weighted(self.rng, [(n, w) for n, _, w in NOTES])
        note = next(text for n, text, _ in NOTES if n == note_name)
        captured = self.payment_amount(capture)
        if self.rng.random() < 0.12:  # over-refunding: more than is left, or more than was captured
            amount = (
                captured + Decimal(self.rng.choice([0, 1, 25])) - Decimal(self.rng.randint(0, 1000)) / 100
            )
        else:
            amount = Decimal(self.rng.randint(100, int(captured * 40))) / 100
        amount = max(amount, Decimal("0.01")).quantize(Decimal("0.01"))
        self.chaos.count(f"request:note:{note_name}")
        return RefundRequest(
            refund_id=refund_id,
            amazon_capture_id=capture,
            amount=amount,
            currency_code="USD",
            seller_refund_note=note,
            soft_descriptor="Returns",
            metadata={"order": str(self.next_refund)},
            api=PaymentApi.V2 if capture in self.charges else PaymentApi.V1,
        )

    def send(self, request: RefundRequest, why: str) -> None:
        if request.amazon_capture_id in self.claimed and not self._reserved(request.refund_id):
            # See `claimed`: a request that would take a new reservation on a capture with an external
            # refund is not sent (the known stale-ledger overdraw, tests/simulation/test_regressions.py).
            self.log(
                f"{self.at()} storefront {why}: {request.refund_id} skipped (capture has an external refund)"
            )
            return
        invisible = self.world.invisible_by_others(request.amazon_capture_id)
        if invisible and not self._reserved(request.refund_id):
            # A refund by others still RefundInitiated whose IPN was not answered yet: nothing can tell
            # the service of it (Get Charge leaves it out), so no new reservation is taken meanwhile.
            self.log(
                f"{self.at()} storefront {why}: {request.refund_id} skipped "
                f"(a refund by others the service cannot know of yet: {invisible[0][-7:]})"
            )
            return
        self.bodies.setdefault(request.refund_id, request)
        note = (
            "plain" if request.seller_refund_note in (None, "Returned item") else request.seller_refund_note
        )
        if note and "SandboxSimulation" in note:
            note = json.loads(note)["SandboxSimulation"]["ReasonCode"] + str(
                json.loads(note)["SandboxSimulation"].get("Times", "")
            )
        self.log(
            f"{self.at()} storefront {why}: {request.refund_id} "
            f"{self.capture_name(request.amazon_capture_id)} {request.amount} note={note}"
        )
        world = self.world

        def body() -> str:
            try:
                outcome = world.requests.request_refund(request, deadline=world.clock.monotonic() + 20.0)
            except Exception as error:
                answer = error_response(error)
                code = answer.body["error"]["code"] if isinstance(answer.body, dict) else "?"
                return f"{answer.status_code} {code}"
            return f"{202 if outcome.created else 200} {outcome.refund.status.value}"

        def done(task: Task) -> None:
            failed = task.error is not None or str(task.result).startswith("5")
            if failed and self.rng.random() < 0.7:
                due = self.clock.elapsed + self.rng.choice([1.0, 30.0, 400.0])
                self.storefront_retries.append((due, request))
                self.chaos.count("storefront:retry-after-5xx")

        self.start(f"request {request.refund_id}", body, done)
        for task in self.world.scheduler.live():
            if task.name == f"request {request.refund_id}" and not hasattr(task, "request"):
                task.request = request  # type: ignore[attr-defined]

    # -- the steps --

    def step(self) -> None:
        self.chargeback_chaos()
        world, rng = self.world, self.rng
        live = world.scheduler.live()
        due_retries = [r for r in self.storefront_retries if r[0] <= self.clock.elapsed]
        runnable = [
            e
            for e in world.executions.values()
            if e.runnable(self.clock.elapsed) and not getattr(e, "busy", False)
        ]
        kind = _weighted(
            rng,
            [
                ("resume", 45.0 * min(len(live), 3)),
                ("request", 18.0),
                ("duplicate", 4.0 if self.bodies else 0),
                ("conflict", 2.5 if self.bodies else 0),
                ("storefront_retry", 15.0 if due_retries else 0),
                ("ipn", 22.0 if world.outbox else 0),
                ("advance", 10.0),
                ("amazon_fault", 7.0),
                ("reconcile", 5.0),
                ("pump", 6.0),
                ("retry_step", 12.0 if runnable else 0),
                ("external_refund", 1.5),
                ("other_system_refund", 1.5),
                ("close_capture", 0.4),
                ("resolve", 3.0),
            ],
        )
        getattr(self, f"do_{kind}")()

    def do_resume(self) -> None:
        task = self.rng.choice(self.world.scheduler.live())
        self.log(f"{self.at()} resume {task} (at {task.label})")
        self.resume(task)

    def do_request(self) -> None:
        request = self.new_request()
        if request is None:
            self.log(f"{self.at()} storefront: every capture has an external refund")
            return
        self.send(request, "new")

    def _reserved(self, refund_id: str) -> bool:
        refund = self.world.inspect.get_refund(refund_id)
        return refund is not None and not refund.reservation_pending

    def do_duplicate(self) -> None:
        refund_id = self.rng.choice(sorted(self.bodies))
        self.chaos.count("storefront:duplicate")
        self.send(self.bodies[refund_id], "duplicate")

    def do_conflict(self) -> None:
        refund_id = self.rng.choice(sorted(self.bodies))
        first = self.bodies[refund_id]
        self.chaos.count("storefront:conflicting-body")
        other = replace(first, amount=first.amount + Decimal("1.00"))
        if self.rng.random() < 0.5:
            other = replace(first, seller_refund_note="A different note")
        self.send(other, "conflicting body")

    def do_storefront_retry(self) -> None:
        due = [r for r in self.storefront_retries if r[0] <= self.clock.elapsed]
        chosen = due[0]
        self.storefront_retries.remove(chosen)
        self.send(chosen[1], "retry")

    def do_ipn(self) -> None:
        world, rng = self.world, self.rng
        index = rng.randrange(len(world.outbox))
        ipn = world.outbox[index]
        fate = rng.random()
        if index:
            self.chaos.count("ipn:reordered")
        if self.clock.elapsed - ipn.created_at > 600:
            self.chaos.count("ipn:delayed>10min")
        if fate < 0.08:
            world.outbox.remove(ipn)
            self.chaos.count("ipn:dropped")
            self.log(f"{self.at()} SNS drops {ipn.label}")
            return
        duplicate = fate < 0.2
        if duplicate:
            self.chaos.count("ipn:duplicated")
        if ipn.attempts:
            self.chaos.count("ipn:redelivered")
        self.log(f"{self.at()} SNS delivers {ipn.label}{' (and will again)' if duplicate else ''}")

        def body() -> str:
            return str(world.deliver(ipn))

        def done(task: Task) -> None:
            delivered = task.error is None and str(task.result).startswith("2")
            if delivered and not duplicate and ipn in world.outbox:
                world.outbox.remove(ipn)
            if not delivered:
                ipn.attempts += 1

        self.start(f"ipn#{ipn.number}", body, done)

    def do_advance(self) -> None:
        if self.world.scheduler.live() and self.rng.random() < 0.85:
            seconds = self.rng.choice([1.0, 3.0, 8.0])  # invocations in flight: mostly a moment
        else:
            seconds = self.rng.choice([5.0, 30.0, 90.0, 200.0, 600.0, 1800.0])
        self.clock.advance(seconds)
        settled = self.world.simulator.settle()
        self.log(f"{self.at()} time +{seconds:.0f}s; Amazon settles {len(settled)}")
        self.enforce_timeouts()

    def do_amazon_fault(self) -> None:
        operation = _weighted(
            self.rng,
            [("Refund", 6.0), ("GetRefundDetails", 2.0), ("GetCaptureDetails", 2.0)]
            + [(name, 6.0 if name == "CreateRefund" else 2.0) for name in V2_OPERATIONS],
        )
        fault = self.rng.choice(FAULT_KINDS)
        count = self.rng.choice([1, 1, 2, 3, 6])
        self.world.simulator.add_fault(operation, fault, count)
        self.chaos.count(f"amazon:{operation}:{fault}")
        self.log(f"{self.at()} Amazon fault: next {count} {operation} -> {fault}")

    def do_reconcile(self) -> None:
        world = self.world

        def body() -> str:
            # functions/reconciler: the remaining time less its 5 s safety margin, 25 actions at most
            report = world.reconciler.run(
                deadline=world.clock.monotonic() + RECONCILER_TIMEOUT - 5.0, limit=25
            )
            return (
                f"submitted={report.submitted} polled={report.polled} advanced={report.advanced} "
                f"failures={report.failures}"
            )

        self.start("reconciler", body, timeout=RECONCILER_TIMEOUT)

    def do_pump(self) -> None:
        published = self.world.pump_stream()
        self.log(f"{self.at()} event publisher: {published} events")

    def do_retry_step(self) -> None:
        world = self.world
        runnable = [
            e
            for e in world.executions.values()
            if e.runnable(self.clock.elapsed) and not getattr(e, "busy", False)
        ]
        execution = self.rng.choice(runnable)
        execution.busy = True  # type: ignore[attr-defined]
        state = execution.state

        def body() -> str:
            execution.step(world.clock.elapsed)
            return f"{state} -> {execution.state} ({execution.status})"

        def done(task: Task) -> None:
            execution.busy = False  # type: ignore[attr-defined]

        self.start(f"retry {execution.name}", body, done, timeout=RETRY_STEPS_TIMEOUT)

    def _headroom(self, capture_id: str) -> Decimal:
        """What Amazon may still refund on the capture without overdrawing what this service holds."""
        headroom = (
            self.payment_amount(capture_id)
            - self.committed_at_amazon(capture_id)
            - self._ours_not_at_amazon(capture_id)
        )
        if not self.stale_externals:
            headroom -= self._requests_in_flight(capture_id)
        return headroom

    def _claim(self, capture_id: str) -> None:
        """After a refund others made on the capture, no new reservation follows on it once this service
        holds anything there (a ledger, a stored refund, a request in flight).

        Amazon can refund a buyer itself at any moment, also between the service's last look at the
        capture (the headroom check before each Refund call, or the GetCaptureDetails that opened the
        ledger) and its Refund call, and a ledger that has not heard of it yet takes reservations it cannot
        cover: no check-then-act closes that window (`--stale-externals` lets it happen;
        test_regressions.py pins the cases the service must catch). A capture the service never touched
        stays open: its ledger's opening reads every refund already on it.
        """
        if self.stale_externals:
            return
        touched = (
            self.world.inspect.ledger_exists(self.ledger_id(capture_id))
            or self._requests_in_flight(capture_id) > 0
        )
        touched = touched or any(
            r.amazon_capture_id == capture_id for r in Snapshot(self.world).refunds.values()
        )
        if touched:
            self.claimed.add(capture_id)

    def _retry_being_sent(self, capture_id: str) -> str | None:
        """A RetryWorkflow StartAttempt step in flight on the capture: between its last look at the capture
        and its Refund call no check can see a new A-to-z refund (the same window as above)."""
        for task in self.world.scheduler.live():
            if not task.name.startswith("retry "):
                continue
            name = task.name.removeprefix("retry ")
            execution = self.world.executions.get(name)
            refund = self.world.inspect.get_refund(name.rsplit("-attempt-", 1)[0])
            if execution is None or execution.state != "StartAttempt" or refund is None:
                continue
            if refund.amazon_capture_id == capture_id:
                return name
        return None

    def do_external_refund(self) -> None:
        sim = self.world.simulator
        capture_id = self.rng.choice(self.captures + self.charges)
        headroom = self._headroom(capture_id)
        if headroom < 1:
            self.log(f"{self.at()} no room for an external refund on {self.capture_name(capture_id)}")
            return
        amount = (Decimal(self.rng.randint(100, int(headroom * 100))) / 100).quantize(Decimal("0.01"))
        if capture_id in self.charges:
            self._charge_refund_by_others(capture_id, amount)
            return
        kind = _weighted(
            self.rng,
            [("AmazonA-ZRefund", 6), ("Chargeback", 2), ("BuyerCanceled", 2), ("SellerInitiated", 2)],
        )
        sending = self._retry_being_sent(capture_id)
        if sending is not None and kind in ("AmazonA-ZRefund", "Chargeback"):
            self.log(f"{self.at()} no {kind} on {self.capture_name(capture_id)}: {sending} is sending")
            return
        state = "Pending" if self.rng.random() < 0.3 else "Completed"
        made = sim.external_refund(capture_id, str(amount), kind, state=state)
        self.world.foreign_refunds.add(str(made["amazon_refund_id"]))
        self._claim(capture_id)
        self.chaos.count(f"amazon:external:{kind}:{state}")
        self.log(
            f"{self.at()} Amazon: {kind} refund of {amount} ({state}) on {self.capture_name(capture_id)}"
        )

    def _charge_refund_by_others(self, charge_id: str, amount: Decimal) -> None:
        """A refund on a v2 charge not made by this service (Seller Central, an A-to-z claim, a chargeback:
        untyped, so each one forbids the ProcessingFailure retry). Not while a retry is being sent on the
        charge (the window no check can close, as for A-to-z refunds on a capture)."""
        sending = self._retry_being_sent(charge_id)
        if sending is not None:
            self.log(
                f"{self.at()} no refund by others on {self.capture_name(charge_id)}: {sending} is sending"
            )
            return
        state, decline = self._pending_by_others()
        made = self.world.simulator.charge_external_refund(
            charge_id, str(amount), state=state, decline_reason=decline
        )
        self.world.foreign_refunds.add(str(made["refundId"]))
        self._claim(charge_id)
        self.chaos.count(
            "amazon:v2-external" + ("" if state == "Refunded" else f":{state}:{decline or 'settles'}")
        )
        name = self.capture_name(charge_id)
        how = "" if state == "Refunded" else f", {state}"
        how += f" to be Declined ({decline})" if decline else ""
        self.log(f"{self.at()} Amazon: refund of {amount} by others on {name} (v2{how})")

    def chargeback_chaos(self) -> None:
        """v2 chargebacks and their IPNs, drawn from their own random stream (`World.chargeback_rng`) before
        each step: the other chaos of a seed stays what it was without them."""
        rng = self.world.chargeback_rng
        if rng.random() < 0.02:
            self.do_chargeback()
        if self.world.chargeback_outbox and rng.random() < 0.25:
            self.deliver_chargeback_ipn()

    def do_chargeback(self) -> None:
        """A chargeback on a v2 charge: its CHARGEBACK IPN names the chargeback and the charge permission;
        sometimes the buyer's money goes back at once as an untyped refund by others on the charge (whether
        and when Amazon moves it is not documented)."""
        rng = self.world.chargeback_rng
        charge_id = rng.choice(self.charges)
        headroom = self._headroom(charge_id)
        amount: Decimal | None = None
        if rng.random() < 0.3 and headroom >= 1 and self._retry_being_sent(charge_id) is None:
            amount = (Decimal(rng.randint(100, int(headroom * 100))) / 100).quantize(Decimal("0.01"))
        charge = self.world.simulator.pay_v2.charges[charge_id]
        refunds_before = len(charge.refund_ids)
        made = self.world.simulator.charge_chargeback(charge_id, None if amount is None else str(amount))
        self.world.foreign_refunds.update(charge.refund_ids[refunds_before:])
        if amount is not None:
            self._claim(charge_id)
        self.chaos.count("amazon:v2-chargeback" + (":refunded" if amount is not None else ""))
        money = f" and a refund of {amount} by others" if amount is not None else ""
        name = self.capture_name(charge_id)
        self.log(f"{self.at()} Amazon: chargeback {made['chargeback_id'][-7:]}{money} on {name}")

    def deliver_chargeback_ipn(self) -> None:
        """SNS delivers a CHARGEBACK IPN (any of them: reordered), or drops it, or will deliver it again;
        run to its end at once, so no other task's scheduling changes (R1 still sees it interleave with
        invocations paused mid-way)."""
        world, rng = self.world, self.world.chargeback_rng
        ipn = rng.choice(world.chargeback_outbox)
        fate = rng.random()
        if fate < 0.08:
            world.chargeback_outbox.remove(ipn)
            self.chaos.count("ipn:chargeback:dropped")
            self.log(f"{self.at()} SNS drops {ipn.label}")
            return
        duplicate = fate < 0.2
        self.log(f"{self.at()} SNS delivers {ipn.label}{' (and will again)' if duplicate else ''}")
        task = world.scheduler.spawn(f"ipn#{ipn.number}", lambda: str(world.deliver(ipn)))
        world.scheduler.run_to_end(task)
        self.finished(task)
        if task.error is None and str(task.result).startswith("2"):
            if not duplicate:
                world.chargeback_outbox.remove(ipn)
        else:
            ipn.attempts += 1

    def do_other_system_refund(self) -> None:
        """The seller's ERP calls Refund at Amazon directly: a reference id of its own, or one shaped like
        an attempt of ours (`{refund_id}_{n}`) of a live or final refund; Amazon applies its every rule."""
        sim = self.world.simulator
        capture_id = self.rng.choice(self.captures)
        headroom = self._headroom(capture_id)
        if headroom < 1:
            self.log(f"{self.at()} ERP: no room on {self.capture_name(capture_id)}")
            return
        ours = sorted(Snapshot(self.world).refunds.values(), key=lambda r: r.refund_id)
        named = self.rng.choice(ours) if ours and self.rng.random() < 0.6 else None
        if named is None:
            reference = f"erp-{self.seed}-{self.rng.randint(1, 10**6)}"
        else:
            reference = f"{named.refund_id}_{self.rng.choice([1, 2, 2, 3, 7, 42])}"
        amount = (Decimal(self.rng.randint(100, int(headroom * 100))) / 100).quantize(Decimal("0.01"))
        if named is not None and amount == named.amount:
            amount = amount - Decimal("0.01") if amount > 1 else amount + Decimal("0.01")
        self.chaos.count("erp:refund:" + ("colliding" if named is not None else "own-reference"))
        try:
            made = sim.seller_refund(
                capture_id, reference, str(amount), seller_refund_note="ERP adjustment", soft_descriptor="ERP"
            )
        except MwsError as refused:
            self.chaos.count(f"erp:refused:{refused.code}")
            self.log(f"{self.at()} ERP: Refund {reference} {amount} refused by Amazon: {refused.code}")
            return
        self.world.foreign_refunds.add(str(made["amazon_refund_id"]))
        self.world.foreign_references.add(reference)
        self._claim(capture_id)
        self.log(f"{self.at()} ERP: Refund {reference} of {amount} on {self.capture_name(capture_id)}")

    def _requests_in_flight(self, capture_id: str) -> Decimal:
        """Requests being handled right now for refunds not stored yet: they may still reserve."""
        total = Decimal(0)
        for task in self.world.scheduler.live():
            request: RefundRequest | None = getattr(task, "request", None)
            if (
                request is not None
                and request.amazon_capture_id == capture_id
                and self.world.inspect.get_refund(request.refund_id) is None
            ):
                total += request.amount
        return total

    def _ours_not_at_amazon(self, capture_id: str) -> Decimal:
        """Reserved by our refunds that Amazon holds no live refund for yet (so not in its totals)."""
        snapshot = Snapshot(self.world)
        total = Decimal(0)
        for refund in snapshot.refunds.values():
            if refund.amazon_capture_id != capture_id:
                continue
            if reservation_state(refund) == "released":
                continue
            live = [a for a in snapshot.ours_at_amazon.get(refund.refund_id, []) if a.state != "Declined"]
            if not live:
                total += refund.amount
        return total

    def do_close_capture(self) -> None:
        capture_id = self.rng.choice(self.captures)
        self.world.simulator.close_capture(capture_id)
        self.chaos.count("amazon:close-capture")
        self.log(f"{self.at()} Amazon closes capture {self.capture_name(capture_id)}")

    def do_resolve(self) -> None:
        waiting = sorted(
            r.refund_id
            for r in Snapshot(self.world).refunds.values()
            if r.status is RefundStatus.MANUAL_ACTION_REQUIRED
        )
        if not waiting:
            self.log(f"{self.at()} operator: nothing to resolve")
            return
        refund_id = self.rng.choice(waiting)
        self.chaos.count("operator:resolve")
        world = self.world

        def body() -> str:
            try:
                return world.requests.resolve(refund_id, "gift_card", "simulated operator").status.value
            except Exception as error:
                return f"{error_response(error).status_code} {type(error).__name__}"

        self.start(f"resolve {refund_id}", body)

    # -- invariants --

    def check(self, final: bool = False) -> None:
        snapshot = Snapshot(self.world)
        found = check_always(snapshot, self.histories) + self.world.adapter.retry_violations
        if final:
            found += check_call_log(self.world) + check_final(self.world, snapshot)
        for violation in found:
            if violation not in self.violations:
                self.violations.append(violation)
                self.log(f"{self.at()} VIOLATION {violation}")

    # -- phases --

    def chaos_phase(self) -> None:
        for number in range(1, self.steps + 1):
            self.step_number = number
            self.step()
            self.check()

    def quiesce(self) -> None:
        world = self.world
        self.chaos.enabled = False
        self.step_number += 1
        self.log(f"{self.at()} quiescence: no more faults")
        world.outbox.extend(world.chargeback_outbox)  # from now on delivered like the others
        world.chargeback_outbox.clear()
        for task in list(world.scheduler.live()):
            self.log(f"{self.at()} finish {task} (at {task.label})")
            world.scheduler.run_to_end(task)
            self.finished(task)
        for _, request in sorted(self.storefront_retries, key=lambda r: r[0]):
            self.send(request, "retry")
            self._finish_all()
        self.storefront_retries.clear()
        for _ in range(QUIESCENCE_ROUNDS):
            self.step_number += 1
            world.pump_stream()
            self._run_executions()
            self._deliver_all()
            self._run_executions()
            self.do_reconcile()
            self._finish_all()
            world.pump_stream()
            self._run_executions()
            if self._quiet():
                break
            self.clock.advance(self._quiet_jump())
            world.simulator.settle()
        else:
            self.violations.append("quiescence: not reached within the time allowed")
        world.pump_stream()
        self.log(f"{self.at()} quiescent")

    def _quiet_jump(self) -> float:
        """How far to move time: to Amazon's next settlement or a workflow's next wake-up when that is all
        there is to wait for, else QUIESCENCE_STEP_SECONDS (the reconciler's polls need time to pass)."""
        now = self.clock.elapsed
        wakes = [w for e in self.world.executions.values() if (w := e.next_wake()) is not None]
        settles = [
            (r.settle_at - self.clock.now()).total_seconds()
            for r in self.world.simulator.market.refunds.values()
            if r.state == "Pending" and r.settle_at is not None
        ]
        settles += [
            (r.settle_at - self.clock.now()).total_seconds()
            for r in self.world.simulator.pay_v2.refunds.values()
            if r.state == "RefundInitiated" and r.settle_at is not None
        ]
        upcoming = [w - now for w in wakes] + settles
        if self.world.outbox or not upcoming:
            return QUIESCENCE_STEP_SECONDS
        return min(max(min(upcoming), 1.0), 1800.0)

    def _finish_all(self) -> None:
        for task in list(self.world.scheduler.live()):
            self.world.scheduler.run_to_end(task)
            self.finished(task)

    def _run_executions(self) -> None:
        world = self.world
        for _ in range(200):
            runnable = [e for e in world.executions.values() if e.runnable(self.clock.elapsed)]
            if not runnable:
                return
            for execution in runnable:
                self.start(f"retry {execution.name}", self._step_of(execution), timeout=RETRY_STEPS_TIMEOUT)
                self._finish_all()

    def _step_of(self, execution: Execution) -> Callable[[], str]:
        def body() -> str:
            state = execution.state
            execution.step(self.clock.elapsed)
            return f"{state} -> {execution.state} ({execution.status})"

        return body

    def _deliver_all(self) -> None:
        world = self.world
        for ipn in list(world.outbox):
            self.log(f"{self.at()} SNS delivers {ipn.label}")
            status: list[str] = []
            self.start(f"ipn#{ipn.number}", self._delivery_of(ipn), self._collect(status))
            self._finish_all()
            if status and status[0].startswith("2"):
                world.outbox.remove(ipn)
            else:
                ipn.attempts += 1

    @staticmethod
    def _collect(into: list[str]) -> Callable[[Task], None]:
        return lambda task: into.append(str(task.result))

    def _delivery_of(self, ipn: Ipn) -> Callable[[], str]:
        return lambda: str(self.world.deliver(ipn))

    def _quiet(self) -> bool:
        world = self.world
        if world.outbox or any(not e.finished for e in world.executions.values()):
            return False
        if any(r.state == "Pending" for r in world.simulator.market.refunds.values()):
            return False
        if any(r.state == "RefundInitiated" for r in world.simulator.pay_v2.refunds.values()):
            return False
        snapshot = Snapshot(world)
        return all(
            r.status
            in (
                RefundStatus.COMPLETED,
                RefundStatus.FAILED,
                RefundStatus.RESOLVED_OUT_OF_BAND,
                RefundStatus.MANUAL_ACTION_REQUIRED,
            )
            for r in snapshot.refunds.values()
        )


def run_seed(seed: int, *, steps: int = DEFAULT_STEPS, stale_externals: bool = False) -> SeedResult:
    started = time.perf_counter()
    with mock_aws():
        simulation = Simulation(seed, steps, stale_externals=stale_externals)
        simulation.setup()
        simulation.chaos_phase()
        simulation.quiesce()
        simulation.check(final=True)
        refunds = Counter(r.status.value for r in Snapshot(simulation.world).refunds.values())
    return SeedResult(
        seed,
        simulation.trace,
        simulation.violations,
        simulation.chaos.mix,
        refunds,
        time.perf_counter() - started,
        stale_externals,
        steps,
    )
