"""Amazon `RefundReferenceId`s derived from the client's `refund_id` and the attempt number.

Attempt n of refund `r` is sent as `{r}_{n}`. `refund_id` has no underscore, so the last `_` separates the
two parts: the mapping is injective and invertible, within Amazon's alphabet `A-Za-z0-9-_` and ≤ 32 chars.
"""

from __future__ import annotations

import re

REFUND_ID_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,28}$")
# Amazon's capture ids: live P01/P02, sandbox S01/S02, e.g. S01-9821095-1837200-C041953.
AMAZON_CAPTURE_ID_PATTERN = re.compile(r"^[PS][0-9]{2}-[0-9]{7}-[0-9]{7}-C[0-9]{6}$")
MAX_ATTEMPT = 999
MAX_REFERENCE_ID_LENGTH = 32

# No leading zero in the attempt: "r_01" would otherwise name the same attempt as "r_1".
_REFERENCE = re.compile(r"^([A-Za-z0-9-]{1,28})_([1-9][0-9]{0,2})$")


class InvalidRefundId(ValueError):
    """A `refund_id` outside `^[A-Za-z0-9-]{1,28}$`."""


def is_valid_refund_id(refund_id: str) -> bool:
    return isinstance(refund_id, str) and REFUND_ID_PATTERN.fullmatch(refund_id) is not None


def refund_reference_id(refund_id: str, attempt: int) -> str:
    """The `RefundReferenceId` of attempt `attempt` (1..999) of the logical refund `refund_id`."""
    if not is_valid_refund_id(refund_id):
        raise InvalidRefundId(f"refund_id must match {REFUND_ID_PATTERN.pattern}")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt must be an integer from 1 to {MAX_ATTEMPT}")
    return f"{refund_id}_{attempt}"


def parse_refund_reference_id(reference_id: str) -> tuple[str, int] | None:
    """`(refund_id, attempt)` for a reference id this service made, else None (e.g. Seller Central's)."""
    match = _REFERENCE.fullmatch(reference_id) if isinstance(reference_id, str) else None
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def is_amazon_capture_id(value: str) -> bool:
    return isinstance(value, str) and AMAZON_CAPTURE_ID_PATTERN.fullmatch(value) is not None
