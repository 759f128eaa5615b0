"""The one table every benchmark prints into: rows of min / median / max with a unit, and notes.

A Row holds the figures of one subject over the rounds (None when it could not be measured); the table
shows min, median and max of them. Notes carry ratios, verdicts and explanations, printed after the
table, each prefixed by its benchmark's name.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


@dataclass
class Row:
    case: str
    subject: str
    values: list[float] | None  # one figure per round; None: not measured (see note)
    note: str = ""
    unit: str = "/s"

    @property
    def rates(self) -> list[float] | None:  # the name ipn_verify.py used first
        return self.values

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")


@dataclass
class Result:
    benchmark: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    """What `python -m bench` passes to every benchmark's `run`; None: the benchmark's own default."""

    rounds: int | None = None
    seconds: float | None = None
    quick: bool = False
    sdk: bool = True

    def pick_rounds(self, default: int, quick: int) -> int:
        return self.rounds if self.rounds is not None else (quick if self.quick else default)

    def pick_seconds(self, default: float, quick: float) -> float:
        return self.seconds if self.seconds is not None else (quick if self.quick else default)


def figure(value: float) -> str:
    """A number in at most 7 characters, with as many decimals as its size allows."""
    if math.isnan(value):
        return "-"
    size = abs(value)
    if size >= 1e7:
        return f"{value:.2e}"
    if size >= 100 or value == int(value):
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def verdict(met: bool) -> str:
    return "MEETS" if met else "MISSES"


def print_results(results: list[Result]) -> None:
    """One table: benchmark, case, subject, min / median / max and unit; then every benchmark's notes."""
    header = f"{'benchmark':12s} {'subject':44s} {'min':>8s} {'median':>8s} {'max':>8s} {'unit':9s} note"
    print(header)
    print("-" * len(header))
    for result in results:
        case = None
        for row in result.rows:
            if row.case != case:
                case = row.case
                print(f"{result.benchmark:12s} {case}")
            if row.values:
                low, mid, high = min(row.values), row.median, max(row.values)
                figures = f"{figure(low):>8s} {figure(mid):>8s} {figure(high):>8s}"
            else:
                figures = f"{'-':>8s} {'-':>8s} {'-':>8s}"
            subject = row.subject if len(row.subject) <= 42 else row.subject[:41] + "~"
            print(f"{'':12s}   {subject:42s} {figures} {row.unit:9s} {row.note}".rstrip())
    for result in results:
        if result.notes:
            print()
        for note in result.notes:
            print(f"{result.benchmark}: {note}")
