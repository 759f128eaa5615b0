"""In-memory doubles of the service's ports: the store (over the domain's ledger rules) and Amazon Pay."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from amazon_pay_refunds.adapters.dynamodb import (
    KnownRefunds,
    LedgerNotFound,
    RefundAlreadyExists,
    RefundNotStored,
    VersionConflict,
)
from amazon_pay_refunds.adapters.mws.credentials import NoCredentialsForSeller, SellerCredentials
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import (
    AmazonRefundStatus,
    CaptureDetails,
    CaptureStatus,
    Price,
    RefundDetails,
)
from amazon_pay_refunds.core.ledger import (
    EffectKind,
    LedgerSeed,
    open_ledger,
    record_external,
    release,
    reserve,
    settle_external,
)
from amazon_pay_refunds.core.lifecycle import Transition
from amazon_pay_refunds.core.models import CaptureLedger, Chargeback, Refund, RefundStatus
from amazon_pay_refunds.ports import OpenRefund

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SELLER = SellerCredentials("A1EXAMPLE", "AKIAEXAMPLE", "secret")
CAPTURE_ID = "S01-1234567-1234567-C000001"


def credentials(seller_id: str | None) -> SellerCredentials:
    if seller_id not in (None, SELLER.seller_id):
        raise NoCredentialsForSeller(str(seller_id))
    return SELLER


class MemoryStore:
    """RefundStore's contract in memory (`ports.RefundStoreAdapter`); the ledger follows core.ledger."""

    def __init__(self) -> None:
        self.refunds: dict[str, Refund] = {}
        self.ledgers: dict[str, CaptureLedger] = {}
        self.ipns: set[str] = set()
        # (seller, charge permission) → chargeback id → when first notified
        self.chargeback_marks: dict[tuple[str, str], dict[str, datetime]] = {}

    def _reserve(self, refund: Refund, seed: LedgerSeed | None) -> None:
        ledger = self.ledgers.get(refund.ledger_id)
        if ledger is None:
            if seed is None:
                raise LedgerNotFound(refund.ledger_id)
            ledger = open_ledger(seed, NOW)
        self.ledgers[refund.ledger_id] = reserve(
            ledger, refund.refund_id, refund.amount, refund.currency_code
        )

    def create_refund_with_reservation(self, refund: Refund, ledger_seed: LedgerSeed | None = None) -> Refund:
        if refund.refund_id in self.refunds:
            raise RefundAlreadyExists(self.refunds[refund.refund_id])
        self._reserve(refund, ledger_seed)
        self.refunds[refund.refund_id] = stored = replace(refund, version=1)
        return stored

    def create_refund_without_reservation(self, refund: Refund) -> Refund:
        if refund.refund_id in self.refunds:
            raise RefundAlreadyExists(self.refunds[refund.refund_id])
        self.refunds[refund.refund_id] = stored = replace(refund, version=1, reservation_pending=True)
        return stored

    def reserve_pending_refund(self, refund: Refund, ledger_seed: LedgerSeed | None = None) -> Refund:
        if self.refunds[refund.refund_id].version != refund.version:
            raise VersionConflict(refund.refund_id)
        self._reserve(refund, ledger_seed)
        self.refunds[refund.refund_id] = stored = replace(
            refund, reservation_pending=False, version=refund.version + 1
        )
        return stored

    def get_refund(self, refund_id: str) -> Refund | None:
        return self.refunds.get(refund_id)

    def get_ledger(self, amazon_capture_id: str) -> CaptureLedger | None:
        ledger = self.ledgers.get(amazon_capture_id)
        if ledger is None or ledger.charge_permission_id is None:
            return ledger
        return replace(ledger, chargebacks=self.chargebacks(ledger.seller_id, ledger.charge_permission_id))

    def ledger_exists(self, amazon_capture_id: str) -> bool:
        return amazon_capture_id in self.ledgers

    def known_refunds(self, amazon_capture_id: str) -> KnownRefunds | None:
        ledger = self.ledgers.get(amazon_capture_id)
        if ledger is None:
            return None
        ours = {r.refund_id: r for r in self.refunds.values() if r.ledger_id == amazon_capture_id}
        return KnownRefunds(ours, ledger.external_refunds, ledger.available, ledger.charge_permission_id)

    def note_charge_permission(self, amazon_capture_id: str, charge_permission_id: str) -> None:
        ledger = self.ledgers.get(amazon_capture_id)
        if ledger is not None and ledger.charge_permission_id is None:
            self.ledgers[amazon_capture_id] = replace(ledger, charge_permission_id=charge_permission_id)

    def record_chargeback(
        self, seller_id: str, charge_permission_id: str, chargeback_id: str, *, at: datetime
    ) -> bool:
        marks = self.chargeback_marks.setdefault((seller_id, charge_permission_id), {})
        if chargeback_id in marks:
            return False
        marks[chargeback_id] = at
        return True

    def chargebacks(self, seller_id: str, charge_permission_id: str) -> tuple[Chargeback, ...]:
        marks = self.chargeback_marks.get((seller_id, charge_permission_id), {})
        return tuple(Chargeback(i, at) for i, at in sorted(marks.items(), key=lambda m: (m[1], m[0])))

    def record_external_refund(
        self,
        amazon_capture_id: str,
        amazon_refund_id: str,
        amount: Decimal,
        currency_code: str,
        refund_type: str,
        *,
        at: datetime,
        state: str | None = None,
        ledger_seed: LedgerSeed | None = None,
    ) -> bool:
        ledger = self.ledgers[amazon_capture_id]
        self.ledgers[amazon_capture_id] = record_external(
            ledger, amazon_refund_id, amount, refund_type, at, state
        )
        return len(self.ledgers[amazon_capture_id].external_refunds) > len(ledger.external_refunds)

    def update_external_refund_state(
        self, amazon_capture_id: str, amazon_refund_id: str, state: str, *, at: datetime
    ) -> bool:
        ledger = self.ledgers.get(amazon_capture_id)
        if ledger is None:
            return False
        self.ledgers[amazon_capture_id] = settle_external(ledger, amazon_refund_id, state)
        return self.ledgers[amazon_capture_id] != ledger

    def transition(
        self, refund_id: str, fn: Callable[[Refund], Transition], *, max_attempts: int = 10
    ) -> Transition:
        current = self.refunds.get(refund_id)
        if current is None:
            raise RefundNotStored(refund_id)
        result = fn(current)
        if not result.changed:
            return result
        if result.effect is not None and result.effect.kind is EffectKind.RELEASE:
            ledger = self.ledgers[current.ledger_id]
            self.ledgers[current.ledger_id] = release(ledger, refund_id)
        self.refunds[refund_id] = stored = replace(result.refund, version=current.version + 1)
        return Transition(current, stored, result.effect)

    def list_open(
        self, status: RefundStatus | None = None, older_than: datetime | None = None, limit: int = 100
    ) -> list[Refund]:
        open_refunds = [r for r in self.refunds.values() if not r.is_final and status in (None, r.status)]
        return sorted(open_refunds, key=lambda r: r.created_at)[:limit]

    def record_ipn_once(
        self, notification_reference_id: str, ttl: timedelta, *, now: datetime | None = None
    ) -> bool:
        if notification_reference_id in self.ipns:
            return False
        self.ipns.add(notification_reference_id)
        return True

    def open_refunds(self) -> Iterator[list[OpenRefund]]:
        yield [
            OpenRefund(r) for r in sorted(self.refunds.values(), key=lambda r: r.created_at) if not r.is_final
        ]

    def record_poll(self, refund: Refund, polls: int, at: datetime) -> bool:
        return False  # no check record is kept here (the reconciler's doubles keep one)


def refund_details(
    amazon_refund_id: str = "S01-1234567-1234567-R000001", state: str = "Pending"
) -> RefundDetails:
    return RefundDetails(
        amazon_refund_id=amazon_refund_id,
        refund_reference_id="ignored",
        refund_type="SellerInitiated",
        refund_amount=Price(Decimal("12.50"), "USD"),
        fee_refunded=None,
        creation_timestamp=NOW,
        refund_status=AmazonRefundStatus(state, NOW, None, None),
        seller_refund_note=None,
        soft_descriptor=None,
        converted_amount=None,
        conversion_rate=None,
    )


def capture_details(
    captured: str = "100.00", currency: str = "USD", state: str = "Completed"
) -> CaptureDetails:
    return CaptureDetails(
        amazon_capture_id=CAPTURE_ID,
        capture_reference_id="c1",
        capture_amount=Price(Decimal(captured), currency),
        refunded_amount=Price(Decimal(0), currency),
        capture_fee=None,
        capture_status=CaptureStatus(state, None, NOW),
        id_list=(),
        creation_timestamp=NOW,
        seller_capture_note=None,
        soft_descriptor=None,
        converted_amount=None,
        conversion_rate=None,
    )


@dataclass
class ScriptedAmazonPay:
    """Answers each call from a script (a result, or an AmazonPayError to raise); records the calls."""

    refund_answers: list[RefundDetails | AmazonPayError] = field(default_factory=lambda: [refund_details()])
    capture_answers: list[CaptureDetails | AmazonPayError] = field(
        default_factory=lambda: [capture_details()]
    )
    refund_calls: list[dict[str, Any]] = field(default_factory=list)
    capture_calls: list[str] = field(default_factory=list)
    # GetRefundDetails answers by AmazonRefundId (a refund not listed: Amazon's InvalidParameterValue).
    refund_details_answers: dict[str, RefundDetails] = field(default_factory=dict)

    def refund(
        self,
        amazon_capture_id: str,
        refund_reference_id: str,
        amount: Decimal,
        currency_code: str,
        **options: Any,
    ) -> RefundDetails:
        """`AmazonPayPort.refund`; the options (deadline, notes, seller) are recorded, not checked."""
        self.refund_calls.append(
            {"reference": refund_reference_id, "amount": amount, "deadline": options.get("deadline")}
        )
        answer = self.refund_answers[min(len(self.refund_calls), len(self.refund_answers)) - 1]
        if isinstance(answer, AmazonPayError):
            raise answer
        return answer

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        self.capture_calls.append(amazon_capture_id)
        answer = self.capture_answers[min(len(self.capture_calls), len(self.capture_answers)) - 1]
        if isinstance(answer, AmazonPayError):
            raise answer
        return answer

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        if amazon_refund_id not in self.refund_details_answers:
            raise AmazonPayError("InvalidParameterValue", "unknown refund", http_status=400)
        return self.refund_details_answers[amazon_refund_id]
