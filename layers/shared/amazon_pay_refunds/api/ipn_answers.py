"""The IPN endpoint's HTTP answers: the use case's outcome (use_cases/notifications.py) as a status code.

SNS redelivers on anything but 2xx: a 4xx tells an operator the post is malformed or not authentic (it is
counted, and alarmed on), a 5xx that it is worth delivering again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amazon_pay_refunds.use_cases.notifications import Disposition, IpnOutcome

HTTP_STATUS = {
    Disposition.ACCEPTED: 200,
    Disposition.MALFORMED: 400,
    Disposition.NOT_AUTHENTIC: 403,
    Disposition.UNAVAILABLE: 503,
    Disposition.FAILED: 500,
}
# Reasons of the handler's own answers (before or around the use case).
HEADER_MISMATCH = "header_mismatch"
CONFIGURATION_ERROR = "configuration_error"
INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class IpnAnswer:
    """What the endpoint answers, and the safe fields to log with it (never the body or secrets)."""

    status: int
    reason: str
    message_id: str | None = None
    notification_type: str | None = None
    refund_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, outcome: IpnOutcome) -> IpnAnswer:
        return cls(
            HTTP_STATUS[outcome.disposition],
            outcome.reason,
            outcome.message_id,
            outcome.notification_type,
            outcome.refund_id,
            outcome.fields,
        )

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        return self.status >= 500

    def body(self) -> dict[str, str]:
        return {"status": "accepted" if self.accepted else "rejected", "reason": self.reason}
