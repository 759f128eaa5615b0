"""The refunds commands against moto (and, for `reconcile`, the simulator on 127.0.0.1)."""

from __future__ import annotations

from tests.support.refund_api_stack import (  # noqa: F401 - fixtures for the command tests
    api,
    aws,
    capture,
    iam_gate,
    served,
    simulator,
    store,
)
