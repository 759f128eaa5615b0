"""`refunds-local` (`make local`): serve the local stack until Ctrl-C (CONTRACT §9)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .environments import DEFAULT_MAX_ENVIRONMENTS
from .stack import DEFAULT_API_KEY, DEFAULT_PORT, DEFAULT_SIM_PORT, EmbeddedStack
from .state_file import remove_state, state_of, write_state


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refunds-local",
        description="The amazon-pay-refunds stack on this machine: API, /ipn, Amazon Pay simulator, AWS "
        "services emulated in process by moto. No AWS account, no Docker.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="storefront API and /ipn (3000)")
    parser.add_argument("--sim-port", type=int, default=DEFAULT_SIM_PORT, help="Amazon Pay simulator (8701)")
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="API-key mode (the template's StorefrontAuthorization API_KEY): the storefront routes take this "
        "x-api-key alone. Without it, they take a SigV4 signature by the local storefront user (printed "
        f"at start) and the usage plan's key {DEFAULT_API_KEY!r}",
    )
    parser.add_argument(
        "--no-throttling", action="store_true", help="switch the simulator's Amazon request quotas off"
    )
    parser.add_argument(
        "--max-environments",
        type=_positive,
        default=DEFAULT_MAX_ENVIRONMENTS,
        metavar="N",
        help="execution environments (processes) a function may run at once, as Lambda's concurrency, "
        f"where the template reserves none ({DEFAULT_MAX_ENVIRONMENTS}; 1: one request at a time)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def banner(stack: EmbeddedStack) -> str:
    api, sim = stack.api_url, stack.sim_url
    iam = stack.storefront_authorization == "AWS_IAM"
    storefront, operator = stack.callers["storefront"], stack.callers["operator"]
    # curl signs with SigV4 itself (--aws-sigv4, curl 7.75 or later).
    sign = (
        f"--aws-sigv4 'aws:amz:{stack.region}:execute-api' "
        f"--user '{storefront.access_key_id}:{storefront.secret_access_key}' "
        if iam
        else ""
    )
    if iam:
        access = [
            f"  Storefront API and /ipn  {api}   (SigV4 as the storefront, and x-api-key: {stack.api_key})",
            "  Local IAM users (SigV4, service execute-api, region "
            f"{stack.region}; valid for this run only, also in the state file):",
            f"    storefront  {storefront.arn}  (StorefrontPolicy)",
            f"      AWS_ACCESS_KEY_ID={storefront.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={storefront.secret_access_key}",
            f"    operator    {operator.arn}  (OperatorPolicy: resolve)",
            f"      AWS_ACCESS_KEY_ID={operator.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={operator.secret_access_key}",
        ]
    else:
        access = [
            f"  Storefront API and /ipn  {api}   (API-key mode; header x-api-key: {stack.api_key})",
            f"  Operator routes (resolve) take SigV4 as the operator: {operator.arn}",
            f"      AWS_ACCESS_KEY_ID={operator.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY={operator.secret_access_key}",
        ]
    return "\n".join(
        [
            "refunds-local: the local stack is up (AWS emulated in process by moto; no AWS account).",
            *access,
            f"  Amazon Pay simulator     {sim}   (MWS {stack.mws_url}, seller {stack.seller_id})",
            f"  AWS services (moto)      {stack.aws_url}   table {stack.table_name}, bus {stack.bus_name}",
            f"  {stack.iam_banner()}",
            f"  Lambda: each function runs in up to {stack.max_environments} execution environments at once "
            "(a process each; ReservedConcurrentExecutions where the template sets it)",
            "",
            "Create a capture on the simulator:",
            f"  curl -s -X POST {sim}/simulator/captures -H 'content-type: application/json' \\",
            """       -d '{"amount": "100.00", "currency_code": "USD"}'""",
            "Request a refund of it (put the amazon_capture_id it answered):",
            f"  curl -s -X POST {api}/refunds {sign}-H 'x-api-key: {stack.api_key}' "
            "-H 'content-type: application/json' \\",
            """       -d '{"refund_id": "ord-1001-r1", "amazon_capture_id": "<id>", "amount": "12.50", """
            """"currency_code": "USD"}'""",
            f"  curl -s {api}/refunds/ord-1001-r1 {sign}-H 'x-api-key: {stack.api_key}'",
            "Ctrl-C stops it.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mode = {"StorefrontAuthorization": "API_KEY" if args.api_key else "AWS_IAM"}
    stack = EmbeddedStack(
        port=args.port,
        sim_port=args.sim_port,
        api_key=args.api_key or DEFAULT_API_KEY,
        throttling=not args.no_throttling,
        parameters=mode,
        max_environments=args.max_environments,
    )
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except OSError as error:
            print(
                f"refunds-local: cannot start: {error} (is a port in use? see --port/--sim-port)",
                file=sys.stderr,
            )
            return 1
        state_file = write_state(state_of(stack))  # where `refunds --local` finds this stack
        print(banner(stack), flush=True)
        print(
            f"Operators' CLI: .venv/bin/refunds --local status|list|resolve|reconcile ({state_file})",
            flush=True,
        )
        while not stopping.wait(0.5):
            pass
        print("refunds-local: stopping...", flush=True)
    finally:
        remove_state()
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("refunds-local: stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
