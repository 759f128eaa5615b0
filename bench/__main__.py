"""`python -m bench` (what `make bench` runs): every benchmark in bench/, printed as one table.

A benchmark is a module of this directory whose name does not start with `_` and that defines
`run(options: bench._report.Options) -> bench._report.Result`. Machine noise is measured first and last
so that every other figure can be read against it. `--only NAME` (repeatable, or comma-separated) runs a
subset; `--quick` fewer and shorter rounds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script from elsewhere: `python bench/__main__.py`
    sys.path.insert(0, str(HERE.parent))

from bench._report import Options, Result, Row, print_results  # noqa: E402

# Noise first (and again last, see main); the rest in this order, any new module after them.
ORDER = ("noise", "cold_start", "ipn_verify", "throughput", "cost", "package_size")


def benchmarks() -> list[str]:
    found = {path.stem for path in HERE.glob("*.py") if not path.stem.startswith("_")}
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def run_one(name: str, options: Options) -> Result:
    started = time.perf_counter()
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    try:
        module = importlib.import_module(f"bench.{name}")
        result: Result = module.run(options)
    except Exception as error:  # one failing benchmark must not hide the others' figures
        traceback.print_exc(file=sys.stderr)
        result = Result(name, [Row("(failed)", "NOT MEASURED", None, unit="")])
        result.notes.append(f"NOT MEASURED: {type(error).__name__}: {error}")
    print(f"[bench] {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these benchmarks (repeatable or comma-separated; of {', '.join(benchmarks())})",
    )
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds (a smoke run)")
    parser.add_argument("--rounds", type=int, help="rounds of every benchmark (default: its own)")
    parser.add_argument("--seconds", type=float, help="duration of a timed round (default: its own)")
    parser.add_argument("--no-sdk", action="store_true", help="ipn_verify: skip the official SDK")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("names", nargs="*", help="benchmarks to run (same as --only)")
    args = parser.parse_args(argv)
    available = benchmarks()
    if args.list:
        print("\n".join(available))
        return 0
    wanted = [name for item in [*args.only, *args.names] for name in item.split(",") if name]
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(available)}")
    options = Options(rounds=args.rounds, seconds=args.seconds, quick=args.quick, sdk=not args.no_sdk)
    selected = [name for name in available if name in wanted] if wanted else available
    started = time.perf_counter()
    results = [run_one(name, options) for name in selected]
    if "noise" in selected and len(selected) > 1:  # again at the end: did the machine change meanwhile?
        again = run_one("noise", options)
        for row in again.rows:
            row.subject = row.subject + " (again, at the end)"
        results[selected.index("noise")].rows += again.rows
        results[selected.index("noise")].notes += again.notes[-1:]
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}; benchmarks took {time.perf_counter() - started:.0f} s"
        f"{' (--quick)' if args.quick else ''}"
    )
    print()
    print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
