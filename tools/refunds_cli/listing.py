"""`refunds list [--status S] [--limit N]`: open refunds, oldest first (final ones are not listed)."""

from __future__ import annotations

import argparse
from typing import Any

from amazon_pay_refunds.core.models import OPEN_STATUSES, Refund, RefundStatus
from amazon_pay_refunds.money import format_amount

from .output import age, emit, guarded, refund_document
from .target import EXIT_OK, add_target_arguments, resolve_target

MAX_LIMIT = 1000


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser("list", help="list open refunds", description=__doc__)
    parser.add_argument(
        "--status",
        choices=[s.value for s in OPEN_STATUSES],
        help="only refunds in this status (default: every open status)",
    )
    parser.add_argument(
        "--limit", type=_limit, default=50, metavar="N", help=f"at most N (1-{MAX_LIMIT}; 50)"
    )
    add_target_arguments(parser)
    parser.set_defaults(handler=run_list)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIMIT}")
    return value


@guarded
def run_list(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    status = RefundStatus(args.status) if args.status else None
    refunds = target.store.list_open(status, limit=args.limit)
    emit(args, [refund_document(r) for r in refunds], table(refunds))
    return EXIT_OK


def table(refunds: list[Refund]) -> str:
    if not refunds:
        return "no open refunds"
    rows = [("REFUND_ID", "STATUS", "AMOUNT", "AGE", "IDLE", "REASON", "CAPTURE")]
    for r in refunds:
        amount = f"{format_amount(r.amount, r.currency_code)} {r.currency_code}"
        reason = r.reason_code or ("reservation pending" if r.reservation_pending else "-")
        rows.append(
            (
                r.refund_id,
                r.status.value,
                amount,
                age(r.created_at),
                age(r.updated_at),
                reason,
                r.ledger_id,  # a v1 capture id, or `v2:{charge id}` for an API v2 refund
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
