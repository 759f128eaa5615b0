from __future__ import annotations

from amazon_pay_refunds.core.lifecycle import AttemptAccepted
from amazon_pay_refunds.core.models import format_timestamp, request_fingerprint
from tests.support.domain import T0, drive, new_refund


def test_refund_resource_has_exactly_the_spec_fields() -> None:
    assert list(new_refund().to_resource()) == [
        "refund_id",
        "seller_id",
        "amazon_capture_id",
        "amount",
        "currency_code",
        "status",
        "reason_code",
        "attempts",
        "history",
        "metadata",
        "created_at",
        "updated_at",
    ]


def test_refund_resource_matches_the_spec_example_shape() -> None:
    resource = drive(new_refund(), AttemptAccepted(1, "S01-1234567-1234567-R000001")).to_resource()
    assert resource["amount"] == "12.50"
    assert resource["attempts"] == [
        {
            "attempt": 1,
            "refund_reference_id": "ord-1001-r1_1",
            "amazon_refund_id": "S01-1234567-1234567-R000001",
            "state": "Pending",
            "reason_code": None,
            "requested_at": "2024-05-01T12:00:00.000Z",
            "updated_at": "2024-05-01T12:00:01.000Z",
        }
    ]
    assert resource["history"][-1] == {
        "at": "2024-05-01T12:00:01.000Z",
        "from": "Requested",
        "to": "Pending",
        "cause": "amazon:Refund",
    }
    assert resource["metadata"] == {"order_id": "1001"}


def test_creation_entry_has_no_previous_status() -> None:
    assert new_refund().to_resource()["history"][0]["from"] is None


def test_amounts_without_minor_units_have_no_decimals() -> None:
    assert new_refund(amount="1000", currency_code="JPY").to_resource()["amount"] == "1000"


def test_timestamps_are_utc_iso_with_z() -> None:
    assert format_timestamp(T0) == "2024-05-01T12:00:00.000Z"


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert request_fingerprint({"a": "1", "b": "2"}) == request_fingerprint({"b": "2", "a": "1"})
    assert request_fingerprint({"a": "1"}) != request_fingerprint({"a": "2"})
