"""DynamoDB persistence: the table's key design (`items`), its definition (`schema`) and `RefundStore`."""

from amazon_pay_refunds.adapters.dynamodb.dynamodb import RefundStore
from amazon_pay_refunds.adapters.dynamodb.schema import TABLE_DEFINITION, create_table
from amazon_pay_refunds.core.ledger import CurrencyMismatch, RefundExceedsCapture
from amazon_pay_refunds.ports import (
    KnownRefunds,
    LedgerNotFound,
    OpenRefund,
    RefundAlreadyExists,
    RefundNotStored,
    StoreBusy,
    StoreError,
    VersionConflict,
)

__all__ = [
    "TABLE_DEFINITION",
    "CurrencyMismatch",
    "KnownRefunds",
    "LedgerNotFound",
    "OpenRefund",
    "RefundAlreadyExists",
    "RefundExceedsCapture",
    "RefundNotStored",
    "RefundStore",
    "StoreBusy",
    "StoreError",
    "VersionConflict",
    "create_table",
]
