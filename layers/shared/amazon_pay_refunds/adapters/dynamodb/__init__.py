"""DynamoDB persistence: the table's key design (`items`), its definition (`schema`) and `RefundStore`."""

from amazon_pay_refunds.adapters.dynamodb.dynamodb import (
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
from amazon_pay_refunds.adapters.dynamodb.schema import TABLE_DEFINITION, create_table
from amazon_pay_refunds.core.ledger import CurrencyMismatch, RefundExceedsCapture

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
