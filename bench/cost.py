"""AWS cost per refund on the local stack, counted where the calls are made.

The whole service runs in this process (refunds_local.EmbeddedStack: moto over the AWS wire protocol, the API
Gateway emulation, the stream pump feeding the EventPublisher, the simulator posting SNS-signed IPNs to
/ipn). Every function's handler is wrapped (invocations, durations, "which function is running" per
thread), and so are botocore's `BaseClient._make_api_call` (every AWS call a handler makes: DynamoDB
capacity, EventBridge entries, Secrets Manager reads) and requests' `Session.send` (every Amazon Pay
call, by Action; cross-checked with the simulator's call log). Calls the harness itself makes (stream
polling, reading the observer queue) run outside any handler and are not billed.

DynamoDB: every call is sent with ReturnConsumedCapacity=TOTAL, but moto answers a fixed placeholder, so
the units are computed from the items before and after each write as DynamoDB bills them (see
bench/_capacity.py: 1 unit per started KB, x2 in transactions, failed conditions charged, gsi1 entries
written when an item gains, changes or loses its index keys); moto's own figure is shown beside.

Scenarios (3 refunds each, --quick: 1), each refund on a fresh capture:
  happy path    POST /refunds -> Pending (Refund answer and IPN) -> settle -> IPN Completed
  AmazonRejected POST /refunds with Amazon's sandbox simulation -> IPN Declined -> ManualActionRequired
  ProcessingFailure retry (only when template.yaml has a state machine): Declined once -> RetryWorkflow
                 -> second attempt -> Completed; Step Functions transitions from the execution histories
Then the bill per million refunds at on-demand prices (PRICES below).
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench._capacity import index_write_units, item_size, read_units, write_units
from bench._lambda_env import load_template
from bench._report import Options, Result, Row, figure, verdict
from bench._support import quiet_stdout

# On-demand prices, US East (N. Virginia), as published on the AWS pricing pages (see PRICES_AS_OF).
PRICES_AS_OF = "AWS pricing pages, us-east-1, as of 2025-06 (DynamoDB: after the 2024-11-01 on-demand cut)"
PRICE_WRITE_UNIT = 0.625 / 1e6  # DynamoDB on-demand write request unit
PRICE_READ_UNIT = 0.125 / 1e6  # DynamoDB on-demand read request unit
PRICE_EVENT = 1.00 / 1e6  # EventBridge custom event (PutEvents entry up to 64 KB)
PRICE_TRANSITION = 0.025 / 1e3  # Step Functions Standard state transition
PRICE_LAMBDA_REQUEST = 0.20 / 1e6
PRICE_LAMBDA_GB_SECOND_ARM = 0.0000133334  # arm64, first 7.5 billion GB-s a month
PRICE_API_REQUEST = 3.50 / 1e6  # API Gateway REST API, first 333 million a month
PRICE_SECRETS_CALL = 0.05 / 1e4  # Secrets Manager API call

GOAL_TABLE_WRITES = 6
RETRY_WAIT_SECONDS = 30  # RetryDelaySeconds is 2 on the local stack
REFUND_NOTE = "Returned item"
REJECTED_NOTE = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "AmazonRejected"}})
FAILURE_ONCE_NOTE = json.dumps(
    {"SandboxSimulation": {"State": "Declined", "ReasonCode": "ProcessingFailure", "Times": 1}}
)
CONSUMED_CAPACITY_OPERATIONS = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
    "TransactWriteItems", "TransactGetItems",
}  # fmt: skip


@dataclass
class Tally:
    """What one refund's journey cost, summed over every handler invocation it caused."""

    invocations: Counter[str] = field(default_factory=Counter)
    billed_ms: Counter[str] = field(default_factory=Counter)
    memory_mb: dict[str, int] = field(default_factory=dict)
    aws_calls: Counter[str] = field(default_factory=Counter)
    amazon_calls: Counter[str] = field(default_factory=Counter)  # "Function: Action"
    table_write_units: float = 0.0
    cancelled_write_units: float = 0.0
    index_write_units: float = 0.0
    read_units: float = 0.0
    moto_reported_units: float = 0.0
    writes: list[str] = field(default_factory=list)
    events: int = 0
    transitions: int = 0
    secrets_calls: int = 0


class Meter:
    """The instrumentation: handler wrappers, botocore and requests patches, capacity probes."""

    def __init__(self, table_keys: tuple[str, ...], index_keys: tuple[str, ...]) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.tally = Tally()
        self.table_keys, self.index_keys = table_keys, index_keys
        self.probe: Any = None  # a DynamoDB client for reading items around writes
        self._saved: list[tuple[Any, str, Any]] = []

    # -- who is running --
    def current(self) -> str | None:
        return getattr(self.local, "function", None)

    def wrap_handler(self, logical_id: str, reference: str, memory_mb: int) -> Callable[[Any, Any], Any]:
        from refunds_local.lambdas import resolve_handler

        loaded: list[Callable[[Any, Any], Any]] = []

        def handler(event: Any, context: Any) -> Any:
            if not loaded:
                loaded.append(resolve_handler(reference))
            self.local.function = logical_id
            begin = time.perf_counter()
            try:
                return loaded[0](event, context)
            finally:
                self.local.function = None
                with self.lock:
                    self.tally.invocations[logical_id] += 1
                    self.tally.billed_ms[logical_id] += math.ceil((time.perf_counter() - begin) * 1000)
                    self.tally.memory_mb[logical_id] = memory_mb

        handler.__qualname__ = reference
        return handler

    # -- patches --
    def install(self) -> None:
        from botocore.client import BaseClient
        from requests import Session

        client_class: Any = BaseClient  # patched on the class: every client, whenever it was created
        session_class: Any = Session
        api_call = client_class._make_api_call
        send = session_class.send
        meter = self

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            function = meter.current()
            if function is None or getattr(meter.local, "probing", False):
                return api_call(client, operation, params)
            return meter.aws_call(function, client, operation, params, api_call)

        def session_send(session: Any, request: Any, **kwargs: Any) -> Any:
            function = meter.current()
            if function is not None and "OffAmazonPayments" in (urlsplit(request.url).path or ""):
                body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
                action = parse_qs(body).get("Action", ["?"])[0]
                with meter.lock:
                    meter.tally.amazon_calls[f"{function}: {action}"] += 1
            return send(session, request, **kwargs)

        self._saved = [(BaseClient, "_make_api_call", api_call), (Session, "send", send)]
        client_class._make_api_call = make_api_call
        session_class.send = session_send

    def uninstall(self) -> None:
        for owner, name, original in self._saved:
            setattr(owner, name, original)
        self._saved = []

    # -- accounting --
    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        self.local.probing = True
        try:
            found: dict[str, Any] | None = self.probe.get_item(
                TableName=table, Key=key, ConsistentRead=True
            ).get("Item")
            return found
        finally:
            self.local.probing = False

    def _key(self, item: dict[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in self.table_keys}

    def aws_call(self, function: str, client: Any, operation: str, params: dict[str, Any], call: Any) -> Any:
        service = client.meta.service_model.service_name
        with self.lock:
            self.tally.aws_calls[f"{function}: {service}.{operation}"] += 1
            if service == "events" and operation == "PutEvents":
                self.tally.events += len(params.get("Entries", []))
            if service == "secretsmanager":
                self.tally.secrets_calls += 1
        if service != "dynamodb":
            return call(client, operation, params)
        if operation in CONSUMED_CAPACITY_OPERATIONS:
            params = {**params, "ReturnConsumedCapacity": "TOTAL"}
        writes = self._write_targets(operation, params)
        before = [(table, key, self._get(table, key)) for table, key in writes]
        error: Exception | None = None
        answer: Any = None
        try:
            answer = call(client, operation, params)
        except Exception as raised:  # re-raised below, after it is billed
            error = raised
        self._bill(function, operation, params, answer, error, before)
        if error is not None:
            raise error
        return answer

    def _write_targets(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if operation == "PutItem":
            return [(params["TableName"], self._key(params["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"])]
        if operation == "TransactWriteItems":
            targets = []
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                targets.append((body["TableName"], self._key(body["Item"]) if kind == "Put" else body["Key"]))
            return targets
        if operation == "BatchWriteItem":
            return [
                (
                    table,
                    self._key(r["PutRequest"]["Item"]) if "PutRequest" in r else r["DeleteRequest"]["Key"],
                )
                for table, requests in params["RequestItems"].items()
                for r in requests
            ]
        return []

    def _bill(
        self,
        function: str,
        operation: str,
        params: dict[str, Any],
        answer: Any,
        error: Exception | None,
        before: list[tuple[str, dict[str, Any], dict[str, Any] | None]],
    ) -> None:
        tally = self.tally
        failed = error is not None
        code = (
            getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
            if failed
            else ""
        )
        transactional = operation == "TransactWriteItems"
        for table, key, old in before:
            new = old if failed else self._get(table, key)
            units = write_units(old, new, transactional=transactional)
            gsi = 0 if failed else index_write_units(old, new, self.table_keys, self.index_keys)
            with self.lock:
                if failed:
                    tally.cancelled_write_units += units
                else:
                    tally.table_write_units += units
                tally.index_write_units += gsi
                pk = next(iter(key.get("pk", {}).values()), "?")
                tally.writes.append(
                    f"{function} {operation} {str(pk).split('#')[0]} {max(item_size(old), item_size(new))} B "
                    f"-> {units} WU{f' + {gsi} gsi1' if gsi else ''}{' (' + code + ')' if failed else ''}"
                )
        reads = 0.0
        if operation == "GetItem":
            item = None if failed else self._get(params["TableName"], params["Key"])
            reads = read_units(item_size(item), consistent=bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem" and not failed:
            for table, request in params["RequestItems"].items():
                for key in request["Keys"]:
                    reads += read_units(
                        item_size(self._get(table, key)), consistent=bool(request.get("ConsistentRead"))
                    )
        elif operation in ("Query", "Scan") and not failed:
            size = sum(
                item_size(i) + (100 if params.get("IndexName") else 0) for i in answer.get("Items", [])
            )
            reads = read_units(size, consistent=bool(params.get("ConsistentRead")))
        elif operation == "TransactGetItems" and not failed:
            for entry in params["TransactItems"]:
                body = entry["Get"]
                reads += read_units(
                    item_size(self._get(body["TableName"], body["Key"])), consistent=True, transactional=True
                )
        reported = 0.0
        if isinstance(answer, dict):
            consumed = answer.get("ConsumedCapacity")
            for part in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
                reported += float(part.get("CapacityUnits") or 0)
        with self.lock:
            tally.read_units += reads
            tally.moto_reported_units += reported


def table_and_index_keys() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from amazon_pay_refunds.adapters.dynamodb.schema import TABLE_DEFINITION

    table = tuple(k["AttributeName"] for k in TABLE_DEFINITION["KeySchema"])
    indexes = TABLE_DEFINITION.get("GlobalSecondaryIndexes") or []
    index = tuple(k["AttributeName"] for i in indexes for k in i["KeySchema"])
    return table, index


def state_machines_in_template() -> list[str]:
    resources = load_template().get("Resources") or {}
    kinds = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
    return [name for name, r in resources.items() if r.get("Type") in kinds]


def api_functions() -> set[str]:
    resources = load_template().get("Resources") or {}
    return {
        name
        for name, r in resources.items()
        if any(
            (e or {}).get("Type") == "Api" for e in ((r.get("Properties") or {}).get("Events") or {}).values()
        )
    }


@contextmanager
def metered_stack(meter: Meter) -> Iterator[Any]:
    from refunds_local.stack import EmbeddedStack
    from refunds_local.template import function_specs
    from refunds_local.template import load_template as load_local_template

    specs = function_specs(load_local_template())
    overrides = {
        logical_id: meter.wrap_handler(logical_id, f"{spec.module}.{spec.handler}", spec.memory_mb)
        for logical_id, spec in specs.items()
    }
    meter.install()
    try:
        with EmbeddedStack(
            port=0, sim_port=0, throttling=False, settle_seconds=3600, handler_overrides=overrides, pump=False
        ) as stack:
            meter.probe = stack.client("dynamodb")
            yield stack
    finally:
        meter.uninstall()


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def one_refund(
    stack: Any, meter: Meter, note: str, expected: str, index: int, *, retry: bool
) -> tuple[Tally, str]:
    from refunds_local.clients import storefront_of

    sim = stack.simulator
    capture = sim.create_capture("100.00", "USD")
    refund_id = f"cost-{int(time.time() * 1000) % 10**9}-{index}"
    meter.tally = Tally()
    body = {
        "refund_id": refund_id, "amazon_capture_id": capture, "amount": "12.50", "currency_code": "USD",
        "seller_refund_note": note, "soft_descriptor": "Returns", "metadata": {"order_id": str(index)},
    }  # fmt: skip
    answer = storefront_of(stack).post_refund(body)
    if answer.status != 202:
        raise RuntimeError(f"POST /refunds answered {answer.status}: {str(answer.body)[:200]}")
    sim.wait_for_ipn_idle(timeout=30)
    stack.drain()
    sim.settle(everything=True)
    sim.wait_for_ipn_idle(timeout=30)

    from amazon_pay_refunds.adapters.dynamodb import RefundStore

    store = RefundStore(stack.table_name, stack.client("dynamodb"))  # from this thread: not billed

    def status() -> str:
        if retry:  # the retry attempt settles at Amazon like the first one did
            sim.settle(everything=True)
            sim.wait_for_ipn_idle(timeout=30)
        stack.drain()
        refund = store.get_refund(refund_id)
        return "missing" if refund is None else str(refund.status.value)

    if retry:
        wait_for(lambda: status() == expected, timeout=RETRY_WAIT_SECONDS, step=0.5)
    final = status()
    stack.drain()
    if retry:
        meter.tally.transitions = state_transitions(stack)
    return meter.tally, final


def state_transitions(stack: Any) -> int:
    """States entered in every execution of every state machine (Standard workflows bill each one)."""
    sfn = stack.client("stepfunctions")
    total = 0
    for machine in sfn.list_state_machines().get("stateMachines", []):
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"]).get(
            "executions", []
        ):
            history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
            total += sum(
                1 for e in history.get("events", []) if str(e.get("type", "")).endswith("StateEntered")
            )
    return total


@dataclass
class Scenario:
    name: str
    note: str
    expected: str
    retry: bool = False


def bill(tally: Tally, api: set[str]) -> dict[str, float]:
    """Dollars for this one refund, by item."""
    gb_seconds = sum(ms / 1000 * tally.memory_mb.get(f, 512) / 1024 for f, ms in tally.billed_ms.items())
    return {
        "DynamoDB writes": (tally.table_write_units + tally.cancelled_write_units + tally.index_write_units)
        * PRICE_WRITE_UNIT,
        "DynamoDB reads": tally.read_units * PRICE_READ_UNIT,
        "EventBridge events": tally.events * PRICE_EVENT,
        "Step Functions transitions": tally.transitions * PRICE_TRANSITION,
        "Lambda requests": sum(tally.invocations.values()) * PRICE_LAMBDA_REQUEST,
        "Lambda GB-s (local durations)": gb_seconds * PRICE_LAMBDA_GB_SECOND_ARM,
        "API Gateway requests": sum(n for f, n in tally.invocations.items() if f in api) * PRICE_API_REQUEST,
        "Secrets Manager calls": tally.secrets_calls * PRICE_SECRETS_CALL,
    }


def run(options: Options) -> Result:
    refunds = 1 if options.quick else options.pick_rounds(3, 1)
    scenarios = [
        Scenario("happy path", REFUND_NOTE, "Completed"),
        Scenario("AmazonRejected", REJECTED_NOTE, "ManualActionRequired"),
        # The longest note Amazon accepts: how close the refund item is to the 1 KB write-unit step.
        Scenario("happy path, 255-character note", "Returned item. " * 17, "Completed"),
    ]
    machines = state_machines_in_template()
    result = Result("cost")
    if machines:
        scenarios.append(Scenario("ProcessingFailure retry", FAILURE_ONCE_NOTE, "Completed", retry=True))
    else:
        result.notes.append("ProcessingFailure retry: NOT MEASURED, template.yaml has no state machine yet")
    api = api_functions()
    meter = Meter(*table_and_index_keys())
    tallies: dict[str, list[Tally]] = {s.name: [] for s in scenarios}
    finals: dict[str, Counter[str]] = {s.name: Counter() for s in scenarios}
    with quiet_stdout(), metered_stack(meter) as stack:
        # Warm every container first (imports, credentials cache, certificate cache): not a refund's cost.
        one_refund(stack, meter, REFUND_NOTE, "Completed", -1, retry=False)
        for index in range(refunds):
            for scenario in scenarios:
                if scenario.retry and index > 0:  # one retry is enough: it waits for the workflow
                    continue
                tally, final = one_refund(
                    stack, meter, scenario.note, scenario.expected, index, retry=scenario.retry
                )
                tallies[scenario.name].append(tally)
                finals[scenario.name][final] += 1
    for scenario in scenarios:
        runs = tallies[scenario.name]
        case = f"{scenario.name}: per refund, {len(runs)} refunds, warm containers"
        ended = ", ".join(f"{k} x{v}" for k, v in finals[scenario.name].items())
        ok = set(finals[scenario.name]) == {scenario.expected}
        if scenario.retry and not ok:
            result.notes.append(
                f"{scenario.name}: FINDING: the refund stayed {ended} for {RETRY_WAIT_SECONDS} s on the "
                f"local stack; Lambda invocations: {dict(runs[-1].invocations)}, Step Functions "
                f"transitions: {runs[-1].transitions} (the retry workflow did not run there: figures "
                "cover the decline only)"
            )

        def row(subject: str, values: list[float], unit: str, note: str = "", case: str = case) -> None:
            result.rows.append(Row(case, subject, values, note, unit=unit))

        table = [t.table_write_units for t in runs]
        row(
            "DynamoDB write units, table",
            table,
            "WU",
            f"ended {ended}{'' if ok else ' (expected ' + scenario.expected + ')'}",
        )
        row("DynamoDB write units, gsi1", [t.index_write_units for t in runs], "WU")
        row(
            "DynamoDB write units, failed conditions",
            [t.cancelled_write_units for t in runs],
            "WU",
            "cancelled transactions / failed conditional writes",
        )
        row("DynamoDB read units", [t.read_units for t in runs], "RU")
        row(
            "  moto's ConsumedCapacity (placeholder)",
            [t.moto_reported_units for t in runs],
            "units",
            "moto answers a constant per call: not DynamoDB's figure",
        )
        row("EventBridge entries", [float(t.events) for t in runs], "events")
        if scenario.retry:
            row("Step Functions state transitions", [float(t.transitions) for t in runs], "states")
        row(
            "Lambda invocations",
            [float(sum(t.invocations.values())) for t in runs],
            "calls",
            ", ".join(f"{f.removesuffix('Function')} {n}" for f, n in sorted(runs[-1].invocations.items())),
        )
        row("Lambda billed duration (local)", [float(sum(t.billed_ms.values())) for t in runs], "ms")
        amazon = runs[-1].amazon_calls
        row(
            "Amazon Pay calls",
            [float(sum(t.amazon_calls.values())) for t in runs],
            "calls",
            ", ".join(f"{k} {v}" for k, v in sorted(amazon.items())),
        )
        dollars = [sum(bill(t, api).values()) * 1e6 for t in runs]
        row("bill per million refunds", dollars, "USD")
        polling = sum(n for t in runs for k, n in t.amazon_calls.items() if k.startswith("IpnHandler"))
        result.notes.append(
            f"{scenario.name}: Amazon calls while handling IPNs: {polling} "
            f"({verdict(polling == 0)} goal: no Amazon polling call when the IPN arrives)"
        )
        if scenario.name == "happy path":
            worst = max(table)
            on_index = statistics.median([t.index_write_units for t in runs])
            cancelled = statistics.median([t.cancelled_write_units for t in runs])
            result.notes.append(
                f"happy path: {figure(statistics.median(table))} table write units per refund "
                f"(max {figure(worst)}) + {figure(on_index)} on gsi1 "
                f"+ {figure(cancelled)} in failed conditions "
                f"({verdict(worst <= GOAL_TABLE_WRITES)} goal <= {GOAL_TABLE_WRITES} table write units; "
                "the store's design expects 6 + 2 on gsi1)"
            )
            result.notes.append("happy path writes (last refund): " + "; ".join(runs[-1].writes))
            result.notes.append(
                "happy path AWS calls (last refund): "
                + ", ".join(f"{k} {v}" for k, v in sorted(runs[-1].aws_calls.items()))
            )
        parts = bill(runs[-1], api)
        result.notes.append(
            f"{scenario.name}: bill per million refunds (last refund) "
            + ", ".join(f"{k} ${v * 1e6:,.2f}" for k, v in parts.items())
        )
    result.notes.append(
        "prices (on-demand, us-east-1; " + PRICES_AS_OF + "): DynamoDB $0.625/M write units, $0.125/M read "
        "units; EventBridge $1.00/M custom events; Step Functions Standard $0.025/1,000 transitions; Lambda "
        "$0.20/M requests + $0.0000133334/GB-s arm64; API Gateway REST $3.50/M requests; Secrets Manager "
        "$0.05/10,000 calls. Not included: CloudWatch Logs/metrics, X-Ray traces, the secret's $0.40/month, "
        "storage, streams (free to Lambda triggers), free tiers"
    )
    result.notes.append(
        "Lambda GB-s use the durations measured here (moto and the simulator answer in milliseconds); in "
        "AWS the Amazon Pay calls (hundreds of ms) dominate RefundApi's duration: at 1 s per POST, "
        "GB-s add about $6.67 per million refunds at 512 MB"
    )
    return result
