"""Whose is a refund Amazon reports on a capture: the one rule every path applies (docs/DESIGN.md).

Amazon reports refunds in IPNs, in GetRefundDetails, and by AmazonRefundId in a capture's IdList. A refund
is *ours* only when its RefundReferenceId names an attempt that exists on the refund it names (`{refund_id}
_{n}`), with the same AmazonRefundId where the attempt knows one, the same amount and currency, the same
capture where the report says which, and the same seller where the report says which. Everything else is
*external*, whatever its reference looks like: the seller's other systems may use any reference id Amazon
accepts, `{our refund_id}_{n}` included.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from amazon_pay_refunds.core.models import Refund
from amazon_pay_refunds.core.references import parse_refund_reference_id

A_TO_Z_REFUND_TYPE = "AmazonA-ZRefund"
DECLINED = "Declined"
# The reasons (a refund's reason_code) a retry is refused for: a person must refund the buyer another way.
REASON_A_TO_Z = "AmazonA-ZRefund found"
REASON_CHARGEBACK = "Chargeback found"
# Amazon Pay API v2 refunds carry no type: an external refund on a v2 charge may be an A-to-z or chargeback
# refund, and nothing tells. Conservative: it forbids the ProcessingFailure retry like those do. (It could
# be relaxed for refunds known to be harmless, e.g. ones the seller's other systems report making, or once
# Amazon documents a v2 chargeback/A-to-z notification that can be matched to the refund.)
UNTYPED_REFUND_TYPE = "Untyped"
REASON_UNTYPED = "Untyped external refund found"


@dataclass(frozen=True)
class ReportedRefund:
    """A refund as Amazon reports it. `amazon_capture_id`/`seller_id` are None when the report does not
    say (an IPN's RefundDetails name no capture)."""

    amazon_refund_id: str
    refund_reference_id: str
    amount: Decimal
    currency_code: str
    refund_type: str
    state: str
    amazon_capture_id: str | None = None
    seller_id: str | None = None


@dataclass(frozen=True)
class Ours:
    """The report is attempt `attempt` of refund `refund_id`."""

    refund_id: str
    attempt: int


def named_refund_id(refund_reference_id: str) -> str | None:
    """The refund_id a reference id names if it has our shape (the refund may not exist, or not be it)."""
    parsed = parse_refund_reference_id(refund_reference_id)
    return None if parsed is None else parsed[0]


def classify(reported: ReportedRefund, named: Refund | None) -> Ours | None:
    """`Ours` when `reported` is an attempt of `named` (the refund its reference id names, as stored, or
    None when there is none); None when the refund is external."""
    parsed = parse_refund_reference_id(reported.refund_reference_id)
    if parsed is None or named is None or named.refund_id != parsed[0]:
        return None
    attempt = named.attempt(parsed[1])
    if attempt is None or attempt.refund_reference_id != reported.refund_reference_id:
        return None
    if attempt.amazon_refund_id is not None and attempt.amazon_refund_id != reported.amazon_refund_id:
        return None
    if reported.amount != named.amount or reported.currency_code != named.currency_code:
        return None
    if reported.amazon_capture_id is not None and reported.amazon_capture_id != named.ledger_id:
        return None
    if reported.seller_id is not None and reported.seller_id != named.seller_id:
        return None
    return Ours(named.refund_id, attempt.attempt)


def is_chargeback(refund_type: str) -> bool:
    """Amazon documents no RefundType for chargeback refunds; any type naming a chargeback counts."""
    return "chargeback" in refund_type.lower()


def forbids_retry(refund_type: str | None) -> str | None:
    """The reason a refund of this type on the capture forbids a ProcessingFailure retry (Amazon's
    procedure: no retry after an A-to-z Guarantee or chargeback refund), else None. Whatever its state:
    a declined A-to-z refund still means a claim is open."""
    if refund_type is None:
        return None
    if refund_type == A_TO_Z_REFUND_TYPE:
        return REASON_A_TO_Z
    if is_chargeback(refund_type):
        return REASON_CHARGEBACK
    if refund_type == UNTYPED_REFUND_TYPE:
        return REASON_UNTYPED
    return None


def counts_against_capture(state: str | None) -> bool:
    """Pending and Completed refunds take money from the capture (Amazon counts both); Declined do not."""
    return state != DECLINED
