"""`refunds reconcile [--limit N]`: run the reconciler's pass once, now, and print what it did.

The same rules as the scheduled Reconciler function (amazon_pay_refunds.use_cases.reconciliation): submits
`Requested` refunds past their grace period, polls due `Pending` attempts, reports overdue retries. It
publishes no metrics. Exit 1 when an action failed.
"""

from __future__ import annotations

import argparse
from typing import Any

from amazon_pay_refunds.adapters.mws.client import deadline_in
from amazon_pay_refunds.use_cases.reconciliation import DEFAULT_LIMIT, ReconciliationReport

from .listing import _limit
from .output import emit, guarded
from .target import EXIT_OK, EXIT_REFUSED, add_target_arguments, resolve_target


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser("reconcile", help="run the reconciler once", description=__doc__)
    parser.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"act on at most N refunds ({DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--time-limit", type=float, default=240.0, metavar="SECONDS", help="start nothing after this (240)"
    )
    add_target_arguments(parser, amazon_pay=True)
    parser.set_defaults(handler=run_reconcile)


@guarded
def run_reconcile(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    reconciler = target.reconciler()
    report = reconciler.run(deadline=deadline_in(args.time_limit), limit=args.limit)
    emit(args, report.to_dict(), describe(report))
    return EXIT_REFUSED if report.failures else EXIT_OK


def describe(report: ReconciliationReport) -> str:
    lines = []
    for a in report.actions:
        moved = f"{a.before.value} -> {a.after.value}" if a.changed else a.after.value
        failed = f"  FAILED {a.error}" if a.error else ""
        lines.append(f"{a.kind:<6}  {a.refund_id}  {moved}: {a.detail}{failed}")
    if not report.actions:
        lines.append("nothing to do")
    stats = report.stats
    by_status = ", ".join(f"{status.value} {count}" for status, count in stats.by_status.items())
    lines += [
        "",
        f"read {report.scanned} open refunds{'' if report.scan_complete else ' (stopped: no time left)'}",
        f"open now: {by_status}",
        f"submitted {report.submitted}, polled {report.polled}, advanced {report.advanced}, "
        f"failed {report.failures}, left for the next run {report.deferred}, not due yet {report.not_due}",
    ]
    if stats.oldest_refund_id:
        lines.append(f"oldest open refund: {stats.oldest_refund_id}, {round(stats.oldest_age_seconds)} s old")
    if report.retry_overdue:
        lines.append(
            "RetryScheduled beyond the retry window (left to the RetryWorkflow): "
            + ", ".join(report.retry_overdue)
        )
    return "\n".join(lines)
