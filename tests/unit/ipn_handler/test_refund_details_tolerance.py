"""Amazon-initiated refunds may carry no RefundReferenceId: they parse, and name no refund of ours."""

from __future__ import annotations

from amazon_pay_refunds.adapters.mws.parse import refund_details_from_xml
from amazon_pay_refunds.core.references import parse_refund_reference_id
from tests.support.ipn_signing import refund_notification_xml


def test_an_a_to_z_refund_ipn_without_refund_reference_id_parses_as_naming_no_refund_of_ours() -> None:
    data = refund_notification_xml(
        amazon_refund_id="S01-1234567-1234567-R000009",
        refund_reference_id=None,
        state="Completed",
        refund_type="AmazonA-ZRefund",
        amount="5.00",
    )

    details = refund_details_from_xml(data)

    assert (details.amazon_refund_id, details.refund_type) == (
        "S01-1234567-1234567-R000009",
        "AmazonA-ZRefund",
    )
    assert details.refund_reference_id == ""
    assert parse_refund_reference_id(details.refund_reference_id) is None


def test_an_empty_refund_reference_id_element_is_tolerated_too() -> None:
    data = refund_notification_xml(
        amazon_refund_id="S01-1234567-1234567-R000009", refund_reference_id="", state="Completed"
    )

    assert refund_details_from_xml(data).refund_reference_id == ""
