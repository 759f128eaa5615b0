"""`python -m bench` (what `make bench` runs): every benchmark in bench/, printed as one table.

A benchmark is a module of this directory whose name does not start with `_` and that defines
`collect(rounds, seconds) -> Result` (see ipn_verify.py); options are passed to each.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script from elsewhere: `python bench/__main__.py`
    sys.path.insert(0, str(HERE.parent))

from bench.ipn_verify import Result, add_arguments, print_results  # noqa: E402


def benchmarks() -> list[str]:
    return sorted(
        module.name for module in pkgutil.iter_modules([str(HERE)]) if not module.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {benchmarks()})")
    args = parser.parse_args(argv)
    results: list[Result] = []
    for name in args.names or benchmarks():
        module = importlib.import_module(f"bench.{name}")
        results.append(module.collect(args.rounds, args.seconds, sdk=not args.no_sdk))
    print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
