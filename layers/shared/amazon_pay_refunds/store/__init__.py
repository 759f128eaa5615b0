"""DynamoDB persistence: the table's key design (`items`), its definition (`schema`) and `RefundStore`."""

from amazon_pay_refunds.domain.ledger import CurrencyMismatch, RefundExceedsCapture
from amazon_pay_refunds.store.dynamodb import (
    KnownRefunds,
    LedgerNotFound,
    OpenRefund,
    RefundAlreadyExists,
    RefundNotFound,
    RefundStore,
    StoreBusy,
    StoreError,
    VersionConflict,
)
from amazon_pay_refunds.store.schema import TABLE_DEFINITION, create_table

__all__ = [
    "TABLE_DEFINITION",
    "CurrencyMismatch",
    "KnownRefunds",
    "LedgerNotFound",
    "OpenRefund",
    "RefundAlreadyExists",
    "RefundExceedsCapture",
    "RefundNotFound",
    "RefundStore",
    "StoreBusy",
    "StoreError",
    "VersionConflict",
    "create_table",
]
