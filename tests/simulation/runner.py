"""Many seeds at once (one process per CPU), and the summary: seeds, time, refunds' end states, fault mix."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor

from .harness import DEFAULT_STEPS, SeedResult, run_seed


def quiet_logging() -> None:
    """The services log every fault we inject (warnings): keep them off the terminal."""
    root = logging.getLogger()
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())


def _run(args: tuple[int, int, bool]) -> SeedResult:
    seed, steps, stale_externals = args
    quiet_logging()
    return run_seed(seed, steps=steps, stale_externals=stale_externals)


def run_many(
    seeds: Iterable[int],
    *,
    steps: int = DEFAULT_STEPS,
    workers: int | None = None,
    stale_externals: bool = False,
) -> list[SeedResult]:
    jobs = [(seed, steps, stale_externals) for seed in seeds]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [_run(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_run, jobs, chunksize=4))


def summary(results: list[SeedResult], wall_seconds: float | None = None) -> str:
    mix: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    for result in results:
        mix.update(result.mix)
        ends.update(result.refunds)
    failed = [r for r in results if not r.ok]
    cpu = sum(r.seconds for r in results)
    lines = [
        f"simulation: {len(results)} seeds, {len(failed)} failing; {cpu:.1f}s of seed time"
        + (f", {wall_seconds:.1f}s wall" if wall_seconds is not None else ""),
        "refunds at quiescence: " + ", ".join(f"{k} {v}" for k, v in sorted(ends.items())),
        "fault mix (injected across all seeds):",
    ]
    lines += [f"  {kind:<42} {count}" for kind, count in sorted(mix.items())]
    for result in failed:
        lines.append(f"FAILING seed {result.seed} (replay: {result.replay}):")
        lines += [f"  {v}" for v in result.violations]
    return "\n".join(lines)


def timed_run(seeds: Iterable[int], *, steps: int = DEFAULT_STEPS) -> tuple[list[SeedResult], float]:
    started = time.perf_counter()
    results = run_many(seeds, steps=steps)
    return results, time.perf_counter() - started
