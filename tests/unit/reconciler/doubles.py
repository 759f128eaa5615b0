"""Doubles for the reconciler: the in-memory store with the open-refund scan and check records, Amazon Pay
answering GetRefundDetails from a script, and a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from amazon_pay_refunds.adapters.dynamodb import OpenRefund
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import RefundDetails
from amazon_pay_refunds.composition import Services
from amazon_pay_refunds.core.ledger import LedgerSeed, open_ledger, reserve
from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    Observation,
    Transition,
    apply_observation,
    request_refund,
)
from amazon_pay_refunds.core.models import AttemptState, Refund
from amazon_pay_refunds.use_cases.reconciliation import Reconciler
from amazon_pay_refunds.use_cases.submission import FaultHook
from tests.support.doubles import (
    CAPTURE_ID,
    NOW,
    MemoryStore,
    ScriptedAmazonPay,
    capture_details,
    credentials,
    refund_details,
)
from tests.support.settings import make_settings

__all__ = [
    "CAPTURE_ID",
    "NOW",
    "Clock",
    "ReconcilerAmazon",
    "ReconcilerStore",
    "capture_details",
    "refund_details",
]


class Clock:
    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class ReconcilerStore(MemoryStore):
    """MemoryStore plus `open_refunds`/`record_poll`; a change of a refund drops its check record, as the
    table's full-item write does."""

    def __init__(self) -> None:
        super().__init__()
        self.checks: dict[str, tuple[int, datetime]] = {}
        self.poll_writes = 0
        self.page_size = 100

    def open_refunds(self) -> Iterator[list[OpenRefund]]:
        ordered = sorted(
            (r for r in self.refunds.values() if not r.is_final), key=lambda r: (r.created_at, r.refund_id)
        )
        for start in range(0, len(ordered), self.page_size):
            page = []
            for refund in ordered[start : start + self.page_size]:
                polls, at = self.checks.get(refund.refund_id, (0, None))
                page.append(OpenRefund(refund, polls, at))
            yield page

    def record_poll(self, refund: Refund, polls: int, at: datetime) -> bool:
        if self.refunds[refund.refund_id].version != refund.version:
            return False
        self.poll_writes += 1
        self.checks[refund.refund_id] = (polls, at)
        return True

    def _drop_check(self, refund_id: str, version: int) -> None:
        if self.refunds[refund_id].version != version:
            self.checks.pop(refund_id, None)

    def transition(
        self, refund_id: str, fn: Callable[[Refund], Transition], *, max_attempts: int = 10
    ) -> Transition:
        before = self.refunds[refund_id].version if refund_id in self.refunds else None
        result = super().transition(refund_id, fn, max_attempts=max_attempts)
        if before is not None:
            self._drop_check(refund_id, before)
        return result

    def reserve_pending_refund(self, refund: Refund, ledger_seed: LedgerSeed | None = None) -> Refund:
        stored = super().reserve_pending_refund(refund, ledger_seed)
        self.checks.pop(refund.refund_id, None)
        return stored

    # --- builders ---

    def add(
        self, refund_id: str, *, at: datetime, amount: str = "12.50", pending_as: str | None = None
    ) -> Refund:
        """A refund reserved and stored at `at`: `Requested`, or `Pending` as Amazon refund `pending_as`."""
        refund = request_refund(
            refund_id=refund_id,
            seller_id="A1EXAMPLE",
            amazon_capture_id=CAPTURE_ID,
            amount=Decimal(amount),
            currency_code="USD",
            seller_refund_note=None,
            soft_descriptor=None,
            metadata={},
            request_fingerprint="f" * 32,
            at=at,
        ).refund
        ledger = self.ledgers.get(CAPTURE_ID) or open_ledger(
            LedgerSeed(CAPTURE_ID, "A1EXAMPLE", "USD", Decimal("1000.00")), at
        )
        self.ledgers[CAPTURE_ID] = reserve(ledger, refund_id, refund.amount, "USD")
        self.refunds[refund_id] = refund = replace(refund, version=1)
        if pending_as is not None:
            refund = self.observe(refund_id, AttemptAccepted(1, pending_as, AttemptState.PENDING), at=at)
        return refund

    def observe(self, refund_id: str, observation: Observation, *, at: datetime) -> Refund:
        return self.transition(refund_id, lambda r: apply_observation(r, observation, at=at)).refund


@dataclass
class ReconcilerAmazon(ScriptedAmazonPay):
    """ScriptedAmazonPay plus GetRefundDetails answered per AmazonRefundId (the last answer repeats)."""

    details: dict[str, list[RefundDetails | AmazonPayError]] = field(default_factory=dict)
    details_calls: list[str] = field(default_factory=list)

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        self.details_calls.append(amazon_refund_id)
        answers = self.details[amazon_refund_id]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, AmazonPayError):
            raise answer
        return answer


def reconciler(
    store: ReconcilerStore, amazon: ReconcilerAmazon, clock: Clock, *, fault_hook: FaultHook | None = None
) -> Reconciler:
    """As the composition root wires it, over these doubles."""
    services = Services(
        make_settings(),
        store=lambda: store,
        amazon_pay=lambda: amazon,
        seller_credentials=credentials,
        now=clock,
    )
    return services.reconciler(fault_hook=fault_hook)
