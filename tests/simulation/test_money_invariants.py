"""Proof by simulation: CONTRACT §7's money invariants under chaos, for a fixed budget of seeds.

`make test` runs SIM_SEEDS (default 200) seeds across the CPUs; `make simulate SEEDS=N` runs more. A failing
seed prints its replayable trace and `.venv/bin/python -m tests.simulation SEED`.
"""

from __future__ import annotations

import os

import pytest

from .harness import run_seed
from .runner import summary, timed_run

SEEDS = int(os.environ.get("SIM_SEEDS", "200"))


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_money_invariants_hold_under_chaos(capsys: pytest.CaptureFixture[str]) -> None:
    results, wall = timed_run(range(SEEDS))
    report = summary(results, wall)
    with capsys.disabled():
        print("\n" + report)
    failing = [r for r in results if not r.ok]
    assert not failing, report + "\n\n" + failing[0].report()


def test_a_seed_replays_exactly() -> None:
    first, second = run_seed(11), run_seed(11)
    assert first.trace == second.trace
    assert first.mix == second.mix
