"""The local stack (`refunds-local`) under concurrent storefront clients, and what it costs idle.

Two kinds of stack, the same in all but one setting:
  one environment - `max_environments=1`: one invocation of a function at a time (what the local stack
                    did before it ran functions in execution environments: requests queue);
  environments    - the default: a pool of execution environments (processes) per function, as Lambda.
Each: throttling off (Amazon's sandbox quotas would set the pace), refunds settle only when told, the stream
pump and IPNs on (as `make local` runs). For 1, 10 and 50 concurrent clients, each client posts new
refunds (`POST /refunds`, each on a capture of its own, created beforehand) one after another over HTTP;
figures: requests/s (all requests / wall time), p50 and p99 latency over every request, and the answers
that were not 202 (a 5xx is the gateway giving up: its 29-s integration timeout, a 504).
Cost: CPU of the stack's process and all its descendants (the environments and their zygote), as % of one
core, over an idle period after start (nothing requested) and again once the load's backlog is worked
off (10 s after it); resident memory
(RSS, which counts pages the environments share with their zygote once per process, and PSS, which
shares them out) of that process tree, idle and right after the 50-client load.
Then the issue's storefront under load, with Amazon's sandbox throttling on (as `make local` runs it;
Refund: burst 2, one more every 2 s): 20 clients post at once a refund of 4.00 each on one 50.00 capture;
with one environment each request waits for the ones before it, their throttled retries included.
Each case runs on a fresh stack in a fresh process (the table's size and the process's memory start the
same). Rounds: 1 (each level's requests: 20, 60 and 100; --quick: 10, 20 and 50; idle 30 s, --quick 5 s).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench._lambda_env import REPO
from bench._report import Options, Result, Row, figure
from bench._support import percentile

LEVELS = (1, 10, 50)
MODES: tuple[tuple[str, int | None], ...] = (("one environment", 1), ("environments", None))


def _log(message: str) -> None:
    print(f"[bench] local_stack: {message}", file=sys.__stderr__, flush=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The handlers' logs and metrics (relayed to this process's stdout/stderr) are dropped."""
    with (
        open(os.devnull, "w", encoding="utf-8") as null,
        contextlib.redirect_stdout(null),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        yield


# --- the process tree ---------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def process_tree(root: int) -> list[int]:
    """`root` and every descendant of it."""
    children = _children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def memory_mb(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) of the processes, in MB."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as rollup:
                for line in rollup:
                    name, _, rest = line.partition(":")
                    if name == "Rss":
                        rss += int(rest.split()[0])
                    elif name == "Pss":
                        pss += int(rest.split()[0])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def idle_cpu_percent(seconds: float) -> float:
    pids = process_tree(os.getpid())
    before = cpu_seconds(pids)
    time.sleep(seconds)
    return (cpu_seconds(pids) - before) / seconds * 100


# --- the load ---------------------------------------------------------------------------------------------


def load(
    stack: Any, clients: int, requests_total: int, *, one_capture: bool = False
) -> tuple[float, list[float], dict[int, int]]:
    """requests/s, latencies (s) and answers by status, of `clients` posting `requests_total` refunds (of
    12.50 each on a 100.00 capture of its own; or, `one_capture`, of 4.00 each on one 50.00 capture)."""
    from refunds_local.clients import Storefront

    if one_capture:
        captures = [stack.simulator.create_capture("50.00", "USD")] * requests_total
    else:
        captures = [stack.simulator.create_capture("100.00", "USD") for _ in range(requests_total)]
    amount = "4.00" if one_capture else "12.50"
    work = iter(enumerate(captures))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    run = f"{time.monotonic_ns():x}"

    def client() -> None:
        storefront = Storefront(stack.api_url, stack.api_key, timeout=60)
        while True:
            with lock:
                item = next(work, None)
            if item is None:
                return
            index, capture_id = item
            body = {
                "refund_id": f"bench-{run}-{index}",
                "amazon_capture_id": capture_id,
                "amount": amount,
                "currency_code": "USD",
            }
            started = time.perf_counter()
            answer = storefront.post_refund(body)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return requests_total / (time.perf_counter() - started), latencies, statuses


def measure(mode: str, case: str, requests_total: int, idle_seconds: float) -> dict[str, Any]:
    """One case on a stack of its own, in this process (the bench runs each in a fresh process)."""
    from refunds_local.stack import EmbeddedStack

    limit = dict(MODES)[mode]
    settings: dict[str, Any] = {} if limit is None else {"max_environments": limit}
    throttled = case == "throttled"
    figures: dict[str, Any] = {}
    with (
        _quiet(),
        EmbeddedStack(port=0, sim_port=0, throttling=throttled, settle_seconds=3600, **settings) as stack,
    ):
        if case == "idle":
            figures["cpu"] = idle_cpu_percent(idle_seconds)
            figures["rss"], figures["pss"] = memory_mb(process_tree(os.getpid()))
            return figures
        clients = 20 if throttled else int(case)
        rate, latencies, statuses = load(stack, clients, requests_total, one_capture=throttled)
        figures.update(rate=rate, p50=percentile(latencies, 0.5), p99=percentile(latencies, 0.99))
        figures["statuses"] = {str(status): n for status, n in statuses.items()}
        figures["rss"], figures["pss"] = memory_mb(process_tree(os.getpid()))
        figures["environments"] = sum(function.pool.size for function in stack.functions.values())
        if clients == LEVELS[-1]:
            time.sleep(10.0)  # the load's backlog (IPNs, the stream, the bus rules) is worked off first
            figures["cpu_after"] = idle_cpu_percent(min(idle_seconds, 10.0))
    return figures


def _in_fresh_process(mode: str, case: str, requests_total: int, idle_seconds: float) -> dict[str, Any]:
    code = (
        "import json, sys; from bench.local_stack import measure; "
        f"print('RESULT ' + json.dumps(measure({mode!r}, {case!r}, {requests_total}, {idle_seconds})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            figures: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return figures
    raise RuntimeError(f"{mode} {case}: no result (exit {done.returncode}): {done.stderr[-2000:]}")


def run(options: Options) -> Result:
    result = Result("local_stack")
    counts = dict(zip(LEVELS, (10, 20, 50) if options.quick else (20, 60, 100), strict=True))
    idle_seconds = 5.0 if options.quick else 30.0
    rates: dict[tuple[str, int], float] = {}
    for mode, _ in MODES:
        _log(f"{mode}: idle {idle_seconds:.0f} s")
        idle = _in_fresh_process(mode, "idle", 0, idle_seconds)
        case = "cost"
        result.rows.append(
            Row(case, f"{mode}: CPU idle ({idle_seconds:.0f} s)", [idle["cpu"]], unit="% core")
        )
        result.rows.append(Row(case, f"{mode}: RSS idle", [idle["rss"]], unit="MB"))
        result.rows.append(Row(case, f"{mode}: PSS idle", [idle["pss"]], unit="MB"))
        for clients in LEVELS:
            _log(f"{mode}: {clients} client(s), {counts[clients]} requests")
            figures = _in_fresh_process(mode, str(clients), counts[clients], idle_seconds)
            rates[(mode, clients)] = figures["rate"]
            case = f"POST /refunds, {clients} client(s)"
            others = {status: n for status, n in figures["statuses"].items() if status != "202"}
            note = "" if not others else f"not 202: {others}"
            result.rows.append(Row(case, f"{mode}: requests/s", [figures["rate"]], note))
            result.rows.append(Row(case, f"{mode}: p50", [figures["p50"] * 1000], unit="ms"))
            result.rows.append(Row(case, f"{mode}: p99", [figures["p99"] * 1000], unit="ms"))
            if "cpu_after" in figures:
                environments = f"{figures['environments']} environments"
                result.rows.append(
                    Row("cost", f"{mode}: RSS after {clients} clients", [figures["rss"]], unit="MB")
                )
                result.rows.append(
                    Row(
                        "cost",
                        f"{mode}: PSS after {clients} clients",
                        [figures["pss"]],
                        unit="MB",
                        note=environments,
                    )
                )
                result.rows.append(
                    Row(
                        "cost",
                        f"{mode}: CPU idle after the load",
                        [figures["cpu_after"]],
                        unit="% core",
                    )
                )
        _log(f"{mode}: 20 clients, throttling on, 4.00 each on one 50.00 capture")
        figures = _in_fresh_process(mode, "throttled", 20, idle_seconds)
        case = "POST /refunds, 20 clients, throttling on"
        note = ", ".join(f"{status}: {n}" for status, n in sorted(figures["statuses"].items()))
        result.rows.append(Row(case, f"{mode}: requests/s", [figures["rate"]], note))
        result.rows.append(Row(case, f"{mode}: p50", [figures["p50"] * 1000], unit="ms"))
        result.rows.append(Row(case, f"{mode}: p99", [figures["p99"] * 1000], unit="ms"))
    result.rows.sort(key=lambda row: row.case == "cost")  # the cost rows last, each case's rows together
    for clients in LEVELS:
        single, pooled = rates[("one environment", clients)], rates[("environments", clients)]
        result.notes.append(
            f"{clients} client(s): environments {figure(pooled)}/s vs one environment {figure(single)}/s "
            f"(x{figure(pooled / single)})"
        )
    result.notes.append(
        "each case on a fresh stack in a fresh process. The stack's process (moto, the simulator, the "
        "gateway, the IAM gate) serves every AWS call one at a time and moto copies every table for each "
        "TransactWriteItems, so with Amazon answering at once its CPU, not the environments, sets the pace; "
        "the environments matter when requests wait on Amazon (the throttled case)"
    )
    return result
