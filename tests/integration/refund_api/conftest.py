"""The refund API's stack (moto, the simulator on 127.0.0.1, the IAM gate): tests/support/."""

from __future__ import annotations

from tests.support.refund_api_stack import (  # noqa: F401 - fixtures
    api,
    aws,
    capture,
    iam_gate,
    served,
    simulator,
    store,
)
