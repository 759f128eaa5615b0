"""Where a running `refunds-local` can be reached: a small JSON file the operators' CLI reads (`--local`).

`refunds-local` writes it once the stack is up and removes it when it stops. Its place: the file named by
REFUNDS_LOCAL_STATE, else `amazon-pay-refunds/refunds-local.json` under XDG_RUNTIME_DIR, else
`.refunds-local.json` in the working directory. It holds no real secret: the stack's AWS is moto (dummy
credentials), the Amazon Pay simulator's keys are its published defaults, and the local storefront's and
operator's IAM keys (to sign API calls with SigV4) are made up at start and valid only for that run's
gateway. The file is written readable by its owner only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stack import EmbeddedStack

STATE_ENV = "REFUNDS_LOCAL_STATE"
FILE_NAME = "refunds-local.json"


class LocalStateError(Exception):
    """No usable state file: the local stack is not running (or was not started from here)."""


@dataclass(frozen=True)
class LocalState:
    pid: int
    aws_endpoint_url: str
    region: str
    table: str
    secret: str
    amazon_pay_endpoint: str
    api_url: str
    sim_url: str
    # The refund policy the stack's functions run with (their environment).
    retry_delay_seconds: int = 90
    max_processing_failure_retries: int = 1
    allow_over_refund: bool = False
    # How the storefront routes are authorized (AWS_IAM or API_KEY), the API key, and the local IAM users'
    # keys (SigV4, service execute-api, the state's region).
    storefront_authorization: str = "AWS_IAM"
    api_key: str = ""
    storefront_access_key_id: str = ""
    storefront_secret_access_key: str = ""
    operator_access_key_id: str = ""
    operator_secret_access_key: str = ""


def state_of(stack: EmbeddedStack) -> LocalState:
    """The running stack's state, with the refund policy its functions' environment sets."""
    environment = stack.environment
    return LocalState(
        pid=os.getpid(),
        aws_endpoint_url=stack.aws_url,
        region=stack.region,
        table=stack.table_name,
        secret=stack.secret_arn or stack.secret_name,
        amazon_pay_endpoint=stack.mws_url,
        api_url=stack.api_url,
        sim_url=stack.sim_url,
        retry_delay_seconds=int(environment.get("RETRY_DELAY_SECONDS") or 90),
        max_processing_failure_retries=int(environment.get("MAX_PROCESSING_FAILURE_RETRIES") or 1),
        allow_over_refund=environment.get("ALLOW_AMAZON_OVER_REFUND", "false") == "true",
        storefront_authorization=stack.storefront_authorization,
        api_key=stack.api_key,
        storefront_access_key_id=stack.callers["storefront"].access_key_id,
        storefront_secret_access_key=stack.callers["storefront"].secret_access_key,
        operator_access_key_id=stack.callers["operator"].access_key_id,
        operator_secret_access_key=stack.callers["operator"].secret_access_key,
    )


def state_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "amazon-pay-refunds" / FILE_NAME
    return Path.cwd() / f".{FILE_NAME}"


def write_state(state: LocalState, path: Path | None = None) -> Path:
    """Write atomically (a reader never sees half a file); returns where."""
    target = path or state_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    partial.touch(mode=0o600)
    partial.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    partial.replace(target)
    return target


def remove_state(path: Path | None = None, *, pid: int | None = None) -> None:
    """Remove the file if it is this process's (`pid`, default the current one)."""
    target = path or state_path()
    owner = os.getpid() if pid is None else pid
    try:
        if read_state(target, check_running=False).pid == owner:
            target.unlink()
    except (LocalStateError, FileNotFoundError):
        pass


def read_state(path: Path | None = None, *, check_running: bool = True) -> LocalState:
    """The running local stack's state. Raises LocalStateError (missing, unreadable, or its process gone)."""
    target = path or state_path()
    try:
        raw: Any = json.loads(target.read_text(encoding="utf-8"))
        state = LocalState(**raw)
    except FileNotFoundError:
        raise LocalStateError(f"no local stack state at {target}: start `refunds-local` first") from None
    except (OSError, ValueError, TypeError) as error:
        raise LocalStateError(f"unreadable local stack state at {target}: {error}") from None
    if check_running and not _running(state.pid):
        raise LocalStateError(f"the local stack of {target} (pid {state.pid}) is not running any more")
    return state


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
