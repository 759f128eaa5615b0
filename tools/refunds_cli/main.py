"""`refunds`: the operators' command line. One subcommand per module; this file only wires them up.

Subcommands register themselves through a `register(subparsers)` function that sets `handler` on their
parser; `status`, `list`, `resolve` and `reconcile` join the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import ipn, listing, reconcile, resolve, status
from .target import add_deployment_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refunds",
        description="Operate amazon-pay-refunds. The deployment options go before or after the command.",
    )
    add_deployment_arguments(parser, command=False)
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    status.register(subcommands)
    listing.register(subcommands)
    resolve.register(subcommands)
    reconcile.register(subcommands)
    ipn.register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
