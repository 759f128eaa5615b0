"""In-memory doubles of the IPN use case's ports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from amazon_pay_refunds.adapters.mws.models import CaptureDetails, RefundDetails
from amazon_pay_refunds.core.ledger import LedgerSeed
from amazon_pay_refunds.core.lifecycle import Transition
from amazon_pay_refunds.core.models import Chargeback, ExternalRefund, Refund
from amazon_pay_refunds.ports import KnownRefunds, RefundNotStored


@dataclass
class MemoryStore:
    refunds: dict[str, Refund] = field(default_factory=dict)
    externals: dict[tuple[str, str], tuple[Decimal, str, str]] = field(default_factory=dict)
    external_states: dict[tuple[str, str], str | None] = field(default_factory=dict)
    ipns: set[str] = field(default_factory=set)
    chargeback_marks: dict[tuple[str, str], dict[str, datetime]] = field(default_factory=dict)
    writes: int = 0

    def add(self, refund: Refund) -> None:
        self.refunds[refund.refund_id] = refund

    def get_refund(self, refund_id: str) -> Refund | None:
        return self.refunds.get(refund_id)

    def transition(
        self, refund_id: str, fn: Callable[[Refund], Transition], *, max_attempts: int = 10
    ) -> Transition:
        current = self.refunds.get(refund_id)
        if current is None:
            raise RefundNotStored(refund_id)
        result = fn(current)
        if not result.changed:
            return result
        stored = replace(result.refund, version=current.version + 1)
        self.refunds[refund_id] = stored
        self.writes += 1
        return Transition(current, stored, result.effect)

    def known_refunds(self, amazon_capture_id: str) -> KnownRefunds | None:
        """A capture has a "ledger" here once a refund of ours or an external refund is on it (no amounts
        are kept: the ledger's rules are tested with the real store)."""
        ours = {r.refund_id: r for r in self.refunds.values() if r.ledger_id == amazon_capture_id}
        externals = tuple(
            ExternalRefund(
                refund_id,
                amount,
                refund_type,
                datetime.min.replace(tzinfo=UTC),
                self.external_states.get(key),
            )
            for key, (amount, _, refund_type) in self.externals.items()
            if (refund_id := key[1]) and key[0] == amazon_capture_id
        )
        if not ours and not externals:
            return None
        return KnownRefunds(ours, externals, Decimal(0))

    def update_external_refund_state(
        self, amazon_capture_id: str, amazon_refund_id: str, state: str, *, at: datetime
    ) -> bool:
        key = (amazon_capture_id, amazon_refund_id)
        if key not in self.externals or self.external_states.get(key) != "Pending":
            return False
        self.external_states[key] = state
        self.writes += 1
        return True

    def list_open(
        self, status: Any = None, older_than: datetime | None = None, limit: int = 100
    ) -> list[Refund]:
        return [r for r in self.refunds.values() if not r.is_final][:limit]

    def record_external_refund(
        self,
        amazon_capture_id: str,
        amazon_refund_id: str,
        amount: Any,
        currency_code: str,
        refund_type: str,
        *,
        at: datetime,
        state: str | None = None,
        ledger_seed: LedgerSeed | None = None,
    ) -> bool:
        key = (amazon_capture_id, amazon_refund_id)
        if key in self.externals:
            return False
        self.externals[key] = (amount, currency_code, refund_type)
        self.external_states[key] = state
        self.writes += 1
        return True

    def record_ipn_once(
        self, notification_reference_id: str, ttl: timedelta, *, now: datetime | None = None
    ) -> bool:
        if notification_reference_id in self.ipns:
            return False
        self.ipns.add(notification_reference_id)
        self.writes += 1
        return True

    def record_chargeback(
        self, seller_id: str, charge_permission_id: str, chargeback_id: str, *, at: datetime
    ) -> bool:
        marks = self.chargeback_marks.setdefault((seller_id, charge_permission_id), {})
        if chargeback_id in marks:
            return False
        marks[chargeback_id] = at
        self.writes += 1
        return True

    def chargebacks(self, seller_id: str, charge_permission_id: str) -> tuple[Chargeback, ...]:
        marks = self.chargeback_marks.get((seller_id, charge_permission_id), {})
        return tuple(Chargeback(i, at) for i, at in sorted(marks.items(), key=lambda m: (m[1], m[0])))

    def note_charge_permission(self, amazon_capture_id: str, charge_permission_id: str) -> None:
        """No ledgers are kept here."""


@dataclass
class CaptureDetailsSpy:
    details: dict[str, CaptureDetails] = field(default_factory=dict)
    refund_details: dict[str, RefundDetails] = field(default_factory=dict)
    error: Exception | None = None
    calls: list[str] = field(default_factory=list)

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        self.calls.append(amazon_capture_id)
        if self.error is not None:
            raise self.error
        return self.details[amazon_capture_id]

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        self.calls.append(amazon_refund_id)
        if self.error is not None:
            raise self.error
        return self.refund_details[amazon_refund_id]
