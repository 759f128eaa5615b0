"""Replay seeds of the simulation: `python -m tests.simulation SEED [SEED...]` prints each trace;
`python -m tests.simulation --seeds N [--start S]` runs N seeds and prints the summary and the fault mix."""

from __future__ import annotations

import argparse
import hashlib
import sys

from .harness import DEFAULT_STEPS, run_seed
from .runner import quiet_logging, run_many, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation", description=__doc__)
    parser.add_argument("seed", nargs="*", type=int, help="replay these seeds, printing their traces")
    parser.add_argument("--seeds", type=int, help="run this many seeds (summary only)")
    parser.add_argument("--start", type=int, default=0, help="first seed of --seeds")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="chaos steps per seed")
    parser.add_argument(
        "--stale-externals",
        action="store_true",
        help="let new refunds follow external refunds on their capture (the known stale-ledger overdraw)",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes for --seeds (default: CPUs)")
    args = parser.parse_args(argv)
    if args.seeds is None and not args.seed:
        parser.error("give SEED(s) to replay, or --seeds N")
    quiet_logging()
    failed = False
    for seed in args.seed:
        result = run_seed(seed, steps=args.steps, stale_externals=args.stale_externals)
        print(result.report())
        digest = hashlib.sha256("\n".join(result.trace).encode()).hexdigest()[:16]
        print(
            f"trace digest {digest}; {len(result.trace)} lines; {result.seconds:.2f}s; "
            f"refunds {dict(result.refunds)}"
        )
        failed |= not result.ok
    if args.seeds is not None:
        results = run_many(
            range(args.start, args.start + args.seeds),
            steps=args.steps,
            workers=args.workers,
            stale_externals=args.stale_externals,
        )
        print(summary(results))
        failed |= any(not r.ok for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
