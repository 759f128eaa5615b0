"""`refunds resolve REFUND_ID --method M [--note T]`: record that the buyer of a ManualActionRequired refund
was refunded another way (→ ResolvedOutOfBand). Any other status is refused (exit 1)."""

from __future__ import annotations

import argparse
import getpass
from typing import Any, get_args

from amazon_pay_refunds.api.models import ResolutionMethod

from .output import emit, guarded, refund_document
from .status import describe
from .target import EXIT_OK, add_target_arguments, resolve_target

MAX_NOTE = 1000


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "resolve", help="mark a ManualActionRequired refund as refunded another way", description=__doc__
    )
    parser.add_argument("refund_id", metavar="REFUND_ID")
    parser.add_argument(
        "--method", required=True, choices=get_args(ResolutionMethod), help="how the buyer was refunded"
    )
    parser.add_argument("--note", type=_note, help="what was done, for the audit trail")
    add_target_arguments(parser)
    parser.set_defaults(handler=run_resolve)


def _note(text: str) -> str:
    if not text.strip() or len(text) > MAX_NOTE:
        raise argparse.ArgumentTypeError(f"a note is 1 to {MAX_NOTE} characters")
    return text


@guarded
def run_resolve(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    note = args.note or f"resolved with the refunds command line by {_operator()}"
    refund = target.refund_requests().resolve(args.refund_id, args.method, note)
    emit(args, refund_document(refund), describe(refund))
    return EXIT_OK


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "an operator"
