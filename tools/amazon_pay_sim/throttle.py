"""Amazon's request quotas as token buckets, one per seller and operation (sandbox values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Quota:
    """Maximum request quota (the burst) and restore rate (one request every `restore_seconds`)."""

    burst: int
    restore_seconds: float


# Amazon Pay v1 sandbox quotas (the live ones are higher: Refund 10 / 1 per s, details 20 / 2 per s).
SANDBOX_QUOTAS: dict[str, Quota] = {
    "Refund": Quota(2, 2.0),
    "GetRefundDetails": Quota(5, 1.0),
    "GetCaptureDetails": Quota(5, 1.0),
    "GetServiceStatus": Quota(2, 300.0),
}


class TokenBucket:
    def __init__(self, quota: Quota, now: datetime) -> None:
        self.quota = quota
        self.tokens = float(quota.burst)
        self.updated = now

    def take(self, now: datetime) -> bool:
        elapsed = max(0.0, (now - self.updated).total_seconds())
        self.tokens = min(float(self.quota.burst), self.tokens + elapsed / self.quota.restore_seconds)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Throttle:
    """Decides whether a seller's call of an operation is within its quota right now."""

    def __init__(self, quotas: dict[str, Quota] | None = None, *, enabled: bool = True) -> None:
        self.quotas = dict(SANDBOX_QUOTAS if quotas is None else quotas)
        self.enabled = enabled
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def allow(self, seller_id: str, operation: str, now: datetime) -> bool:
        if not self.enabled or operation not in self.quotas:
            return True
        bucket = self._buckets.get((seller_id, operation))
        if bucket is None:
            bucket = self._buckets[(seller_id, operation)] = TokenBucket(self.quotas[operation], now)
        return bucket.take(now)

    def reset(self) -> None:
        self._buckets.clear()
