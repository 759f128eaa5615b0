"""`refunds status REFUND_ID`: one refund, its attempts at Amazon and its audit trail."""

from __future__ import annotations

import argparse
from typing import Any

from amazon_pay_refunds.core.models import PaymentApi, Refund, format_timestamp
from amazon_pay_refunds.money import format_amount

from .output import age, emit, guarded, refund_document
from .target import EXIT_OK, add_target_arguments, resolve_target


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser("status", help="show one refund", description=__doc__)
    parser.add_argument("refund_id", metavar="REFUND_ID")
    add_target_arguments(parser)
    parser.set_defaults(handler=run_status)


@guarded
def run_status(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    refund = target.refund_requests().get_refund(args.refund_id)
    emit(args, refund_document(refund), describe(refund))
    return EXIT_OK


def describe(refund: Refund) -> str:
    lines = [
        f"{refund.refund_id}  {refund.status.value}"
        + (f" ({refund.reason_code})" if refund.reason_code else ""),
        f"  amount    {format_amount(refund.amount, refund.currency_code)} {refund.currency_code}",
        (
            f"  charge    {refund.amazon_capture_id} (API v2)   seller {refund.seller_id}"
            if refund.api is PaymentApi.V2
            else f"  capture   {refund.amazon_capture_id}   seller {refund.seller_id}"
        ),
        f"  created   {format_timestamp(refund.created_at)}  ({age(refund.created_at)} ago)",
        f"  updated   {format_timestamp(refund.updated_at)}  ({age(refund.updated_at)} ago)",
    ]
    if refund.reservation_pending:
        lines.append("  reservation pending: Amazon was not reachable to open the capture's ledger yet")
    lines.append("  attempts")
    for a in refund.attempts:
        reason = f" ({a.reason_code})" if a.reason_code else ""
        lines.append(
            f"    #{a.attempt}  {a.refund_reference_id}  {a.amazon_refund_id or '-'}  {a.state.value}{reason}"
            f"  updated {format_timestamp(a.updated_at)}"
        )
    lines.append("  history")
    for h in refund.history:
        moved = f"{h.from_.value} -> {h.to.value}" if h.from_ is not None else h.to.value
        reason = f" ({h.reason_code})" if h.reason_code else ""
        detail = "".join(f"  {k}={v}" for k, v in (h.detail or {}).items())
        lines.append(f"    {format_timestamp(h.at)}  {moved}{reason}  [{h.cause}]{detail}")
    if refund.late_observations:
        lines.append("  late or contradicting reports (kept for audit)")
        for o in refund.late_observations:
            reason = f" ({o.reason_code})" if o.reason_code else ""
            lines.append(
                f"    {format_timestamp(o.at)}  attempt {o.attempt or '?'} {o.state.value}{reason}"
                f"  {o.amazon_refund_id or ''}  [{o.cause}]"
            )
    return "\n".join(lines)
