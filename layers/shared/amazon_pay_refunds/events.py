"""Refund transitions → EventBridge entries, derived from the refunds table's stream (the outbox).

Each new entry in a refund's `history` (beyond the old image's) becomes its event(s); a capture ledger's
new external refunds become `External Refund Detected`, and a recorded one whose state moved on (a v2
refund by others settled or declined) `External Refund Updated`; a charge permission's new chargebacks
(API v2) `Chargeback Recorded`. So an event is published if and only if its transition was stored.
Delivery is at least once: consumers deduplicate on `detail.event_id`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from amazon_pay_refunds.adapters.dynamodb import items
from amazon_pay_refunds.core.models import (
    SOURCE,
    DetailType,
    HistoryEntry,
    Refund,
    format_timestamp,
    parse_qualified_id,
    payment_fields,
)
from amazon_pay_refunds.money import format_amount

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

PUT_EVENTS_BATCH = 10
_DESERIALIZER = TypeDeserializer()


@dataclass(frozen=True)
class RefundEvent:
    """One EventBridge event: its detail-type, its JSON detail and when the transition happened."""

    detail_type: DetailType
    detail: Mapping[str, Any]
    time: datetime

    def to_entry(self, event_bus_name: str) -> PutEventsRequestEntryTypeDef:
        return {
            "Source": SOURCE,
            "DetailType": self.detail_type.value,
            "Detail": json.dumps(self.detail, separators=(",", ":"), sort_keys=True),
            "Time": self.time,
            "EventBusName": event_bus_name,
        }


def transition_events(old: Refund | None, new: Refund) -> list[RefundEvent]:
    """The events of `new`'s history entries that `old` did not have yet."""
    done = 0 if old is None else len(old.history)
    resource = new.to_resource()
    events = []
    for index, entry in enumerate(new.history[done:], start=done):
        for detail_type in entry.detail_types:
            events.append(
                RefundEvent(detail_type, _transition_detail(resource, entry, index, detail_type), entry.at)
            )
    return events


def _transition_detail(
    resource: Mapping[str, Any], entry: HistoryEntry, index: int, detail_type: DetailType
) -> dict[str, Any]:
    detail = dict(resource)
    detail["previous_status"] = None if entry.from_ is None else entry.from_.value
    detail["reason_code"] = entry.reason_code
    detail["event_id"] = f"{resource['refund_id']}/{index}/{detail_type.name.lower()}"
    if entry.detail:
        detail["resolution"] = dict(entry.detail)
    return detail


def external_refund_events(
    old_ledger: Mapping[str, Any] | None, new_ledger: Mapping[str, Any]
) -> list[RefundEvent]:
    """`External Refund Detected` for each external refund newly recorded on a capture's ledger item, and
    `External Refund Updated` for each recorded one whose state changed (`previous_state`, `updated_at`)."""
    before = (
        {} if old_ledger is None else {e.amazon_refund_id: e for e in items.externals_from_item(old_ledger)}
    )
    currency = str(new_ledger["currency_code"])
    capture_id = items.ledger_id_of(new_ledger)
    events = []
    for external in items.externals_from_item(new_ledger):
        if external.amount is None:
            continue  # unread entries of ledgers opened before opening read the capture's refunds
        previous = before.get(external.amazon_refund_id)
        detail = {
            "event_id": f"{capture_id}/external/{external.amazon_refund_id}",
            **payment_fields(*parse_qualified_id(capture_id)),
            "seller_id": new_ledger["seller_id"],
            "amazon_refund_id": external.amazon_refund_id,
            "refund_type": external.refund_type,
            "state": external.state,
            "amount": format_amount(external.amount, currency),
            "currency_code": currency,
            "recorded_at": format_timestamp(external.recorded_at),
            "captured": format_amount(new_ledger["captured"], currency),
            "external": format_amount(new_ledger["external"], currency),
            "available": format_amount(new_ledger["available"], currency),
        }
        if previous is None:
            events.append(RefundEvent(DetailType.EXTERNAL_REFUND_DETECTED, detail, external.recorded_at))
        elif previous.amount is not None and previous.state != external.state and external.state is not None:
            updated_at = (
                items.external_updated_at(new_ledger, external.amazon_refund_id) or external.recorded_at
            )
            detail["event_id"] += f"/{external.state.lower()}"
            detail["previous_state"] = previous.state
            detail["updated_at"] = format_timestamp(updated_at)
            events.append(RefundEvent(DetailType.EXTERNAL_REFUND_UPDATED, detail, updated_at))
    return events


def chargeback_events(old_item: Mapping[str, Any] | None, new_item: Mapping[str, Any]) -> list[RefundEvent]:
    """`Chargeback Recorded` for each chargeback newly recorded on a seller's v2 charge permission: the
    storefront knows its orders by their charge permission (Checkout v2's checkout result)."""
    known = {c.chargeback_id for c in items.chargebacks_from_item(old_item)}
    permission = str(new_item["charge_permission_id"])
    return [
        RefundEvent(
            DetailType.CHARGEBACK_RECORDED,
            {
                "event_id": f"{permission}/chargeback/{chargeback.chargeback_id}",
                "seller_id": new_item["seller_id"],
                "charge_permission_id": permission,
                "chargeback_id": chargeback.chargeback_id,
                "notified_at": format_timestamp(chargeback.notified_at),
            },
            chargeback.notified_at,
        )
        for chargeback in items.chargebacks_from_item(new_item)
        if chargeback.chargeback_id not in known
    ]


def events_from_stream_record(record: Mapping[str, Any]) -> list[RefundEvent]:
    """Events for one DynamoDB stream record (NEW_AND_OLD_IMAGES); none for removals and IPN items."""
    change = record.get("dynamodb", {})
    new_image = change.get("NewImage")
    if record.get("eventName") == "REMOVE" or not new_image:
        return []
    new = _image(new_image)
    old = _image(change["OldImage"]) if change.get("OldImage") else None
    if items.is_refund_item(new):
        before = items.refund_from_item(old) if old is not None and items.is_refund_item(old) else None
        return transition_events(before, items.refund_from_item(new))
    if items.is_ledger_item(new) and "externals" in new:
        return external_refund_events(old if old is not None and "externals" in old else None, new)
    if items.is_chargebacks_item(new):
        return chargeback_events(old, new)
    return []


def _image(image: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZER.deserialize(v) for k, v in image.items()}


@dataclass
class PublishResult:
    """What a batch of stream records produced: events published, and records to retry (sequence numbers)."""

    published: int = 0
    failed: list[str] = field(default_factory=list)


def publish_stream_records(
    client: EventBridgeClient, event_bus_name: str, records: Sequence[Mapping[str, Any]]
) -> PublishResult:
    """Publish the events of `records` in order, PutEvents batches of 10.

    From the first record with an event that could not be published, that record and every later one are
    reported failed, so the stream redelivers them in order (earlier events may then repeat).
    """
    result = PublishResult()
    pending: list[tuple[str, RefundEvent]] = []
    for record in records:
        sequence_number = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
        pending.extend((sequence_number, event) for event in events_from_stream_record(record))
    failed_from: str | None = None
    for start in range(0, len(pending), PUT_EVENTS_BATCH):
        chunk = pending[start : start + PUT_EVENTS_BATCH]
        try:
            answer = client.put_events(Entries=[event.to_entry(event_bus_name) for _, event in chunk])
            outcomes = answer.get("Entries", [])
        except (BotoCoreError, ClientError):
            outcomes = []
        for index, (sequence_number, _) in enumerate(chunk):
            outcome: Mapping[str, Any] = outcomes[index] if index < len(outcomes) else {}
            if outcome.get("ErrorCode") or not outcome.get("EventId"):
                failed_from = sequence_number
                break
            result.published += 1
        if failed_from is not None:
            break
    if failed_from is not None:
        sequence_numbers = [str(r.get("dynamodb", {}).get("SequenceNumber", "")) for r in records]
        result.failed = sequence_numbers[sequence_numbers.index(failed_from) :]
    return result
