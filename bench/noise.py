"""Machine noise: how steady a fixed workload runs on this machine right now.

The same pure-Python workload (a small dict/str/int mix, like handler code) and the same C workload
(SHA-256 of 64 KiB) are timed in many short rounds; the spread (max - min) / median of each says how much
any other figure of this run can move for reasons that are not the code's. `python -m bench` runs it
first and again last. Rounds: 15 of 0.2 s (--quick: 6).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from bench._report import Options, Result, Row, figure

BLOCK = bytes(range(256)) * 256  # 64 KiB


def python_work() -> int:
    table: dict[str, int] = {}
    for index in range(200):
        key = f"refund-{index % 37}"
        table[key] = table.get(key, 0) + index * 3
    return sum(table.values())


def c_work() -> bytes:
    return hashlib.sha256(BLOCK).digest()


def rates(operation: Callable[[], object], rounds: int, seconds: float) -> list[float]:
    found = []
    for _ in range(rounds):
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(20):
                operation()
            calls += 20
        found.append(calls / elapsed)
    return found


def run(options: Options) -> Result:
    rounds, seconds = options.pick_rounds(15, 6), options.pick_seconds(0.2, 0.1)
    result = Result("noise")
    spreads = []
    for subject, operation in (
        ("pure Python workload (dict/str/int)", python_work),
        ("C workload: sha256 of 64 KiB", c_work),
    ):
        found = rates(operation, rounds, seconds)
        row = Row("machine noise (same work every round)", subject, found)
        spread = (max(found) - min(found)) / row.median
        spreads.append(f"{subject}: spread {spread:.0%}")
        row.note = f"spread (max-min)/median {spread:.0%} over {rounds} rounds of {figure(seconds)} s"
        result.rows.append(row)
    result.notes.append(
        "figures below that differ by less than this spread are within the machine's noise; ratios "
        "are measured side by side (alternating) to cancel most of it. " + "; ".join(spreads)
    )
    return result
