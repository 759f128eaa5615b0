"""RefundStore: the DynamoDB adapter for refunds, capture ledgers and IPN dedupe (single table).

Every money-relevant write is conditional: a refund is created together with its reservation in one
transaction (the ledger's `available >= :amount` check makes concurrent requests unable to overdraw), and
each later change is a put conditioned on the refund's `version` (optimistic concurrency), transacted with
the ledger update when the change moves `available`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from amazon_pay_refunds.adapters.dynamodb import items
from amazon_pay_refunds.adapters.dynamodb.schema import GSI1, TTL_ATTRIBUTE
from amazon_pay_refunds.core.classification import counts_against_capture
from amazon_pay_refunds.core.ledger import (
    EXTERNAL_STATE_CHANGES,
    CurrencyMismatch,
    EffectKind,
    LedgerEffect,
    LedgerError,
    LedgerSeed,
    RefundExceedsCapture,
    check_reservation,
    open_ledger,
)
from amazon_pay_refunds.core.lifecycle import Transition
from amazon_pay_refunds.core.models import (
    CaptureLedger,
    Chargeback,
    ExternalRefund,
    Refund,
    RefundStatus,
    format_timestamp,
)
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

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
CONDITION_FAILED = "ConditionalCheckFailed"


__all__ = ["RefundStore"]


def _serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(v) for k, v in item.items()}


def _deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _cancellation_reasons(error: ClientError) -> list[dict[str, Any]]:
    return list(error.response.get("CancellationReasons", []))  # type: ignore[arg-type]


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))


class RefundStore:
    """Refunds, capture ledgers and IPN dedupe in the `REFUNDS_TABLE` (keys: docs/DESIGN.md).

    The ledger methods' `amazon_capture_id` is a ledger id (core/models.qualified_id): a v1 capture id, or
    `v2:{charge id}` for a v2 charge, kept under `CHARGE#` (items.ledger_key).
    """

    def __init__(
        self, table_name: str, client: DynamoDBClient | None = None, *, max_conflict_retries: int = 10
    ) -> None:
        self.table_name = table_name
        self.client: DynamoDBClient = client if client is not None else boto3.client("dynamodb")
        self.max_conflict_retries = max_conflict_retries

    # --- refunds ---------------------------------------------------------------------------------------

    def create_refund_with_reservation(self, refund: Refund, ledger_seed: LedgerSeed | None = None) -> Refund:
        """Store a new refund and reserve its amount on the capture's ledger, atomically.

        Opens the ledger from `ledger_seed` (GetCaptureDetails) if the capture has none yet. Raises
        RefundAlreadyExists, RefundExceedsCapture, CurrencyMismatch, LedgerNotFound (no ledger, no seed)
        or StoreBusy. Returns the stored refund (version 1).
        """
        stored = replace(refund, version=1)
        put_refund: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table_name,
                "Item": _serialize(items.refund_to_item(stored)),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        reserve_on_ledger, refusal_if_new = self._reservation(refund, ledger_seed)
        for attempt in range(self.max_conflict_retries):
            reasons = self._transact([put_refund, reserve_on_ledger])
            if reasons is None:
                return stored
            self._raise_if_refund_exists(reasons[0])
            if _is_conflict(reasons):
                _backoff(attempt)
                continue
            if reasons[1].get("Code") != CONDITION_FAILED:
                raise StoreError(f"reservation cancelled: {reasons}")
            ledger = reasons[1].get("Item")
            if ledger is not None:
                self._raise_refusal(refund, _deserialize(ledger))
            if refusal_if_new is not None:
                raise refusal_if_new
            raise LedgerNotFound(refund.ledger_id)
        raise StoreBusy(f"could not reserve on capture {refund.ledger_id}")

    def create_refund_without_reservation(self, refund: Refund) -> Refund:
        """Store a new refund whose capture could not be looked up yet (GetCaptureDetails unreachable).

        Nothing is reserved: the refund is stored with `reservation_pending` and must not be sent to
        Amazon before `reserve_pending_refund` took its reservation. Raises RefundAlreadyExists. Returns
        the stored refund (version 1).
        """
        stored = replace(refund, reservation_pending=True, version=1)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_serialize(items.refund_to_item(stored)),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            existing: Any = error.response.get("Item")
            if existing is None:  # pragma: no cover - DynamoDB returns ALL_OLD on this condition
                raise StoreError("refund exists but was not returned") from None
            raise RefundAlreadyExists(items.refund_from_item(_deserialize(existing))) from None
        return stored

    def reserve_pending_refund(self, refund: Refund, ledger_seed: LedgerSeed | None = None) -> Refund:
        """Take the reservation a `reservation_pending` refund lacks, atomically with clearing the flag.

        `refund` is the refund as read; the ledger is opened from `ledger_seed` if the capture has none.
        Raises VersionConflict (the refund changed: re-read it), RefundExceedsCapture, CurrencyMismatch,
        LedgerNotFound (no ledger, no seed) or StoreBusy. Returns the stored refund.
        """
        if not refund.reservation_pending:
            raise ValueError(f"refund {refund.refund_id} already holds its reservation")
        stored = replace(refund, reservation_pending=False, version=refund.version + 1)
        put_refund: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self.table_name,
                "Item": _serialize(items.refund_to_item(stored)),
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": _serialize({":version": Decimal(refund.version)}),
            }
        }
        reserve_on_ledger, refusal_if_new = self._reservation(refund, ledger_seed)
        for attempt in range(self.max_conflict_retries):
            reasons = self._transact([put_refund, reserve_on_ledger])
            if reasons is None:
                return stored
            if reasons[0].get("Code") == CONDITION_FAILED:
                raise VersionConflict(refund.refund_id)
            if _is_conflict(reasons):
                _backoff(attempt)
                continue
            if reasons[1].get("Code") != CONDITION_FAILED:
                raise StoreError(f"reservation cancelled: {reasons}")
            ledger = reasons[1].get("Item")
            if ledger is not None:
                self._raise_refusal(refund, _deserialize(ledger))
            if refusal_if_new is not None:
                raise refusal_if_new
            raise LedgerNotFound(refund.ledger_id)
        raise StoreBusy(f"could not reserve on capture {refund.ledger_id}")

    def _reservation(
        self, refund: Refund, seed: LedgerSeed | None
    ) -> tuple[TransactWriteItemTypeDef, LedgerError | None]:
        """The ledger update reserving `refund.amount`; with a seed it also opens a missing ledger.

        Opening is an upsert (`if_not_exists` on every opening attribute) inside the same transaction, so
        two first refunds racing on one capture cannot both open it. Also returns the refusal a brand-new
        ledger would give (then only an existing ledger may take the reservation).
        """
        values: dict[str, Any] = {
            ":amount": refund.amount,
            ":currency": refund.currency_code,
            ":refund_ids": {refund.refund_id},
        }
        names: dict[str, str] = {}
        update = "SET available = available - :amount, reserved = reserved + :amount"
        condition = "attribute_exists(pk) AND currency_code = :currency AND available >= :amount"
        refusal: LedgerError | None = None
        if seed is not None:
            now = datetime.now(UTC)
            opened = open_ledger(seed, now)
            try:
                check_reservation(opened, refund.amount, refund.currency_code)
            except LedgerError as error:
                refusal = error
        if seed is not None and refusal is None:
            opening = items.ledger_to_item(opened, now)
            clauses = []
            for index, name in enumerate(k for k in opening if k not in ("pk", "sk", "refund_ids")):
                names[f"#o{index}"] = name
                values[f":o{index}"] = opening[name]
                if name == "available":
                    clauses.append(f"#o{index} = if_not_exists(#o{index}, :o{index}) - :amount")
                elif name == "reserved":
                    clauses.append(f"#o{index} = if_not_exists(#o{index}, :o{index}) + :amount")
                else:
                    clauses.append(f"#o{index} = if_not_exists(#o{index}, :o{index})")
            update = "SET " + ", ".join(clauses)
            condition = "attribute_not_exists(pk) OR (currency_code = :currency AND available >= :amount)"
        operation: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _serialize(items.ledger_key(refund.ledger_id)),
            "UpdateExpression": update + " ADD refund_ids :refund_ids",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": _serialize(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            operation["ExpressionAttributeNames"] = names
        return {"Update": operation}, refusal  # type: ignore[typeddict-item]

    def _raise_if_refund_exists(self, reason: Mapping[str, Any]) -> None:
        if reason.get("Code") == CONDITION_FAILED:
            existing = reason.get("Item")
            if existing is None:  # pragma: no cover - DynamoDB returns ALL_OLD on this condition
                raise StoreError("refund exists but was not returned")
            raise RefundAlreadyExists(items.refund_from_item(_deserialize(existing)))

    @staticmethod
    def _raise_refusal(refund: Refund, ledger_item: Mapping[str, Any]) -> None:
        if ledger_item["currency_code"] != refund.currency_code:
            raise CurrencyMismatch(refund.currency_code, str(ledger_item["currency_code"]))
        raise RefundExceedsCapture(refund.amount, max(items.available_from_item(ledger_item), Decimal(0)))

    def get_refund(self, refund_id: str) -> Refund | None:
        answer = self.client.get_item(
            TableName=self.table_name, Key=_serialize(items.refund_key(refund_id)), ConsistentRead=True
        )
        item = answer.get("Item")
        return None if item is None else items.refund_from_item(_deserialize(item))

    def apply(self, before: Refund, after: Refund, effect: LedgerEffect | None) -> Refund:
        """Store `after` if the refund is still at `before.version`, with its ledger effect, atomically.

        Raises VersionConflict when the refund changed meanwhile. Returns the stored refund.
        """
        if after == before and effect is None:
            return before
        stored = replace(after, version=before.version + 1)
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": _serialize(items.refund_to_item(stored)),
            "ConditionExpression": "version = :version",
            "ExpressionAttributeValues": _serialize({":version": Decimal(before.version)}),
        }
        if effect is None or not effect.changes_available:
            try:
                self.client.put_item(**put)
            except ClientError as error:
                if _error_code(error) == "ConditionalCheckFailedException":
                    raise VersionConflict(before.refund_id) from None
                raise
            return stored
        if effect.kind is not EffectKind.RELEASE:
            raise ValueError(f"{effect.kind} is only applied when the refund is created")
        release: TransactWriteItemTypeDef = {
            "Update": {
                "TableName": self.table_name,
                "Key": _serialize(items.ledger_key(after.ledger_id)),
                "UpdateExpression": "SET available = available + :amount, reserved = reserved - :amount",
                "ConditionExpression": "contains(refund_ids, :refund_id)",
                "ExpressionAttributeValues": _serialize(
                    {":amount": effect.amount, ":refund_id": effect.refund_id}
                ),
            }
        }
        reasons = self._transact([{"Put": put}, release])  # type: ignore[typeddict-item]
        if reasons is None:
            return stored
        if reasons[0].get("Code") == CONDITION_FAILED or _is_conflict(reasons):
            raise VersionConflict(before.refund_id)
        raise StoreError(f"ledger of {after.ledger_id} holds no reservation for {after.refund_id}")

    def transition(
        self, refund_id: str, fn: Callable[[Refund], Transition], *, max_attempts: int = 10
    ) -> Transition:
        """Read the refund, compute `fn(refund)`, store it; on a concurrent change re-read and re-apply.

        Returns the applied Transition (its `refund` is the stored one). Errors raised by `fn` (such as
        TransitionNotAllowed) propagate; RefundNotStored when there is no such refund.
        """
        for attempt in range(max_attempts):
            current = self.get_refund(refund_id)
            if current is None:
                raise RefundNotStored(refund_id)
            result = fn(current)
            if not result.changed:
                return result
            try:
                stored = self.apply(current, result.refund, result.effect)
            except VersionConflict:
                _backoff(attempt)
                continue
            return Transition(current, stored, result.effect)
        raise StoreBusy(f"refund {refund_id} kept changing")

    def list_open(
        self, status: RefundStatus | None = None, older_than: datetime | None = None, limit: int = 100
    ) -> list[Refund]:
        """Open (not final) refunds, oldest first; optionally only `status`, only those not updated since
        `older_than`."""
        found: list[Refund] = []
        for keys in self._open_refund_keys(older_than):
            for refund in self._batch_get_refunds(keys):
                if status is not None and refund.status is not status:
                    continue
                if older_than is not None and refund.updated_at >= older_than:
                    continue
                if refund.is_final:  # pragma: no cover - final refunds leave the index in the same write
                    continue
                found.append(refund)
                if len(found) >= limit:
                    return found
        return found

    def _open_refund_keys(self, older_than: datetime | None) -> Iterator[list[dict[str, Any]]]:
        condition = "gsi1pk = :open"
        values: dict[str, Any] = {":open": items.OPEN_GSI1PK}
        if older_than is not None:  # created before it, a necessary condition for "not updated since"
            condition += " AND gsi1sk < :before"
            values[":before"] = format_timestamp(older_than)
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            IndexName=GSI1,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=_serialize(values),
            PaginationConfig={"PageSize": 100},
        ):
            keys = [{"pk": k["pk"], "sk": k["sk"]} for k in page.get("Items", [])]
            if keys:
                yield keys

    def open_refunds(self) -> Iterator[list[OpenRefund]]:
        """Every open refund with its check record, oldest first, a page (up to 100) at a time.

        The reconciler's scan: it stops reading when its time is up, so this yields lazily.
        """
        for keys in self._open_refund_keys(None):
            page = [
                OpenRefund(items.refund_from_item(item), *items.poll_record_from_item(item))
                for item in self._batch_get_items(keys)
            ]
            yield [o for o in page if not o.refund.is_final]  # the index may lag a refund's final write

    def record_poll(self, refund: Refund, polls: int, at: datetime) -> bool:
        """Store the reconciler's check record on the refund, if it is still at `refund.version`.

        Two small attributes in one UpdateItem: no version change, no history, nothing published. False
        when the refund changed meanwhile (its backoff then restarts anyway).
        """
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_serialize(items.refund_key(refund.refund_id)),
                UpdateExpression="SET #polls = :polls, #polled_at = :at",
                ConditionExpression="version = :version",
                ExpressionAttributeNames={"#polls": items.POLLS, "#polled_at": items.POLLED_AT},
                ExpressionAttributeValues=_serialize(
                    {
                        ":polls": Decimal(polls),
                        ":at": format_timestamp(at),
                        ":version": Decimal(refund.version),
                    }
                ),
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _batch_get_refunds(self, keys: Sequence[Mapping[str, Any]]) -> list[Refund]:
        """Refund items for `keys` (serialized), in the order of `keys`; missing ones skipped."""
        return [items.refund_from_item(item) for item in self._batch_get_items(keys)]

    def _batch_get_items(self, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The items (deserialized) for `keys` (serialized), in the order of `keys`; missing ones skipped."""
        by_pk: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 100):
            pending: Any = {
                self.table_name: {"Keys": list(keys[start : start + 100]), "ConsistentRead": True}
            }
            for attempt in range(self.max_conflict_retries + 5):
                answer = self.client.batch_get_item(RequestItems=pending)
                for raw in answer.get("Responses", {}).get(self.table_name, []):
                    item = _deserialize(raw)
                    by_pk[str(item["pk"])] = item
                pending = answer.get("UnprocessedKeys") or None
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise StoreBusy("batch read kept returning unprocessed keys")
        ordered = [str(_DESERIALIZER.deserialize(k["pk"])) for k in keys]
        return [by_pk[pk] for pk in ordered if pk in by_pk]

    # --- capture ledgers -------------------------------------------------------------------------------

    def ledger_exists(self, amazon_capture_id: str) -> bool:
        """Whether the capture's ledger was opened: one eventually consistent key-only read (0.5 RU).

        A stale "no" only costs a GetCaptureDetails call: the seeded reservation opens the ledger with
        `if_not_exists`, so it is right whether or not the ledger exists by then.
        """
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=_serialize(items.ledger_key(amazon_capture_id)),
            ProjectionExpression="pk",
        )
        return "Item" in answer

    def get_ledger(self, amazon_capture_id: str) -> CaptureLedger | None:
        """The capture's ledger with its refunds (for GET /captures/{id}), or None if none was opened; a
        charge's with the chargebacks recorded on its charge permission, when the ledger knows it."""
        found = self._ledger_and_refunds(amazon_capture_id)
        if found is None:
            return None
        ledger = items.ledger_from_item(*found)
        if ledger.charge_permission_id is None:
            return ledger
        return replace(ledger, chargebacks=self.chargebacks(ledger.seller_id, ledger.charge_permission_id))

    def known_refunds(self, amazon_capture_id: str) -> KnownRefunds | None:
        """What the capture's ledger accounts for: our refunds, every AmazonRefundId it knows (our attempts'
        and the external ones), and what is still available. None if no ledger was opened."""
        found = self._ledger_and_refunds(amazon_capture_id)
        if found is None:
            return None
        item, refunds = found
        return KnownRefunds(
            refunds=refunds,
            externals=items.externals_from_item(item),
            available=items.available_from_item(item),
            charge_permission_id=item.get("charge_permission_id"),
        )

    def _ledger_and_refunds(self, amazon_capture_id: str) -> tuple[dict[str, Any], dict[str, Refund]] | None:
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=_serialize(items.ledger_key(amazon_capture_id)),
            ConsistentRead=True,
        )
        raw = answer.get("Item")
        if raw is None:
            return None
        item = _deserialize(raw)
        keys = [_serialize(items.refund_key(r)) for r in sorted(item.get("refund_ids", ()))]
        return item, {r.refund_id: r for r in self._batch_get_refunds(keys)}

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
        """Record a refund we did not issue on the capture's ledger, once per AmazonRefundId, with its
        amount, type and `state`; its amount counts unless it was Declined.

        Always recorded, even if it overdraws (`available` may go negative: it already happened). True
        when newly recorded (the stream then publishes `External Refund Detected`), False for a repeat.
        Opens the ledger from `ledger_seed` when needed; refunds the seed already lists count only once.
        Recording an entry that was unread (a ledger opened before opening read its refunds, type
        `Opening`) fills in what was read and counts its amount unless Declined. The opening balance
        (Amazon's RefundedAmount then) may already hold a Completed one, which is then counted twice:
        whether it completed before the opening cannot be told, and twice is the safe side.
        """
        entry = items.external_to_item(ExternalRefund(amazon_refund_id, amount, refund_type, at, state))
        counted = amount if counts_against_capture(state) else Decimal(0)
        for _ in range(3):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=_serialize(items.ledger_key(amazon_capture_id)),
                    UpdateExpression="SET externals.#refund = :entry, #external = #external + :amount, "
                    "available = available - :amount",
                    ConditionExpression="attribute_exists(pk) AND currency_code = :currency "
                    "AND attribute_not_exists(externals.#refund)",
                    ExpressionAttributeNames={"#refund": amazon_refund_id, "#external": "external"},
                    ExpressionAttributeValues=_serialize(
                        {":entry": entry, ":amount": counted, ":currency": currency_code}
                    ),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return True
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                old: Any = error.response.get("Item")
            if old is not None:
                ledger = _deserialize(old)
                if ledger["currency_code"] != currency_code:
                    raise CurrencyMismatch(currency_code, str(ledger["currency_code"]))
                previous = ledger.get("externals", {}).get(amazon_refund_id)
                if previous is not None and "amount" not in previous:
                    return self._fill_in_unread(amazon_capture_id, amazon_refund_id, entry, amount, state)
                return False
            if ledger_seed is None:
                raise LedgerNotFound(amazon_capture_id)
            self._open_ledger(ledger_seed)
        raise StoreBusy(f"could not record external refund on {amazon_capture_id}")

    def update_external_refund_state(
        self, amazon_capture_id: str, amazon_refund_id: str, state: str, *, at: datetime
    ) -> bool:
        """Move a recorded external refund Pending → Completed or Pending → Declined (one conditional
        update on its entry's state: concurrent IPNs and surveys apply it once). A Completed one still
        counts; a Declined one moved no money and is no longer counted: its amount goes back to `available`
        in the same write (core/ledger.py). True when it changed; False when the entry is not Pending
        (already moved), absent, or no ledger."""
        if ("Pending", state) not in EXTERNAL_STATE_CHANGES:
            return False
        update = "SET externals.#refund.#state = :state, externals.#refund.settled_at = :at"
        names = {"#refund": amazon_refund_id, "#state": "state"}
        if not counts_against_capture(state):  # Declined: its amount is available again
            update += (
                ", #external = #external - externals.#refund.amount"
                ", available = available + externals.#refund.amount"
            )
            names["#external"] = "external"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_serialize(items.ledger_key(amazon_capture_id)),
                UpdateExpression=update,
                ConditionExpression="externals.#refund.#state = :pending",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_serialize(
                    {":state": state, ":pending": "Pending", ":at": format_timestamp(at)}
                ),
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _fill_in_unread(
        self,
        amazon_capture_id: str,
        amazon_refund_id: str,
        entry: Mapping[str, Any],
        amount: Decimal,
        state: str | None,
    ) -> bool:
        counted = amount if counts_against_capture(state) else Decimal(0)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_serialize(items.ledger_key(amazon_capture_id)),
                UpdateExpression="SET externals.#refund = :entry, #external = #external + :amount, "
                "available = available - :amount",
                ConditionExpression="attribute_not_exists(externals.#refund.amount)",
                ExpressionAttributeNames={"#refund": amazon_refund_id, "#external": "external"},
                ExpressionAttributeValues=_serialize({":entry": dict(entry), ":amount": counted}),
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _open_ledger(self, seed: LedgerSeed) -> None:
        now = datetime.now(UTC)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_serialize(items.ledger_to_item(open_ledger(seed, now), now)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise

    # --- API v2 chargebacks ---------------------------------------------------------------------------

    def record_chargeback(
        self, seller_id: str, charge_permission_id: str, chargeback_id: str, *, at: datetime
    ) -> bool:
        """Record a chargeback on the seller's charge permission, once per chargeback id (its time is the
        first notification's). True when newly recorded, False for a repeat (a redelivered IPN).

        One item per (seller, charge permission) with a map chargeback id → time, so every reader needs
        one GetItem: added to an existing map under `attribute_not_exists` of its entry, or the item is
        created with it (`attribute_not_exists(pk)`); a race between two first chargebacks retries.
        """
        key = _serialize(items.chargebacks_key(seller_id, charge_permission_id))
        stamp = format_timestamp(at)
        for attempt in range(self.max_conflict_retries):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=key,
                    UpdateExpression="SET chargebacks.#id = :at",
                    ConditionExpression="attribute_exists(chargebacks) "
                    "AND attribute_not_exists(chargebacks.#id)",
                    ExpressionAttributeNames={"#id": chargeback_id},
                    ExpressionAttributeValues=_serialize({":at": stamp}),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return True
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                old: Any = error.response.get("Item")
            if old is not None:
                if chargeback_id in _deserialize(old).get("chargebacks", {}):
                    return False
                _backoff(attempt)  # pragma: no cover - every item is created with its map
                continue  # pragma: no cover
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item=_serialize(
                        {
                            **items.chargebacks_key(seller_id, charge_permission_id),
                            "seller_id": seller_id,
                            "charge_permission_id": charge_permission_id,
                            "chargebacks": {chargeback_id: stamp},
                        }
                    ),
                    ConditionExpression="attribute_not_exists(pk)",
                )
                return True
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
        raise StoreBusy(f"could not record chargeback {chargeback_id}")

    def chargebacks(self, seller_id: str, charge_permission_id: str) -> tuple[Chargeback, ...]:
        """The chargebacks recorded on the seller's charge permission, oldest first (one strong read)."""
        answer = self.client.get_item(
            TableName=self.table_name,
            Key=_serialize(items.chargebacks_key(seller_id, charge_permission_id)),
            ConsistentRead=True,
        )
        raw = answer.get("Item")
        return items.chargebacks_from_item(_deserialize(raw) if raw is not None else None)

    def note_charge_permission(self, amazon_capture_id: str, charge_permission_id: str) -> None:
        """Remember a charge ledger's charge permission (ledgers opened before it was kept lack it)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_serialize(items.ledger_key(amazon_capture_id)),
                UpdateExpression="SET charge_permission_id = :permission",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(charge_permission_id)",
                ExpressionAttributeValues=_serialize({":permission": charge_permission_id}),
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise

    # --- IPN dedupe ------------------------------------------------------------------------------------

    def record_ipn_once(
        self, notification_reference_id: str, ttl: timedelta, *, now: datetime | None = None
    ) -> bool:
        """True the first time a NotificationReferenceId is seen (within `ttl`), False for duplicates."""
        moment = now or datetime.now(UTC)
        epoch = int(moment.timestamp())
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_serialize(
                    {
                        **items.ipn_key(notification_reference_id),
                        TTL_ATTRIBUTE: epoch + int(ttl.total_seconds()),
                    }
                ),
                # An expired item may linger until TTL deletion runs: treat it as absent.
                ConditionExpression="attribute_not_exists(pk) OR #expires < :now",
                ExpressionAttributeNames={"#expires": TTL_ATTRIBUTE},
                ExpressionAttributeValues=_serialize({":now": epoch}),
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- plumbing --------------------------------------------------------------------------------------

    def _transact(self, operations: list[TransactWriteItemTypeDef]) -> list[dict[str, Any]] | None:
        """Run a transaction; None on success, else the cancellation reasons (one per operation)."""
        try:
            self.client.transact_write_items(TransactItems=operations)
        except ClientError as error:
            if _error_code(error) != "TransactionCanceledException":
                raise
            reasons = _cancellation_reasons(error)
            return reasons or [{"Code": "TransactionConflict"}] * len(operations)
        return None


def _is_conflict(reasons: Sequence[Mapping[str, Any]]) -> bool:
    return any(r.get("Code") == "TransactionConflict" for r in reasons)
