"""Concurrent requests on one capture must never overdraw it (CONTRACT §7.1).

moto's in-process backend is not thread-safe (TransactWriteItems deep-copies tables while other threads
write), so each API call runs under a lock, as each DynamoDB request is atomic. Requests still interleave
freely between calls, so this exercises the conditions (not DynamoDB's own isolation): accepted total
within the capture, a definite answer for every caller, and no accepted refund lost.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from amazon_pay_refunds.adapters.dynamodb import RefundExceedsCapture, RefundStore

from .support import CAPTURE_ID, refund, seed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

THREADS = 20


class OneRequestAtATime:
    """A DynamoDB client proxy that runs each API call atomically, as DynamoDB does."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@pytest.fixture
def store(dynamodb: DynamoDBClient, table: str) -> RefundStore:
    return RefundStore(table, OneRequestAtATime(dynamodb))  # type: ignore[arg-type]


def reserve_concurrently(store: RefundStore, *, ledger_exists: bool) -> dict[str, str]:
    if ledger_exists:
        store.create_refund_with_reservation(refund("warm-up", "1.00"), seed("100.00"))

    def attempt(number: int) -> tuple[str, str]:
        refund_id = f"r{number:02d}"
        try:
            store.create_refund_with_reservation(refund(refund_id, "7.00"), seed("100.00"))
        except RefundExceedsCapture:
            return refund_id, "refused"
        return refund_id, "accepted"

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return dict(pool.map(attempt, range(THREADS)))


@pytest.mark.parametrize("ledger_exists", [True, False], ids=["existing-ledger", "ledger-opened-in-the-race"])
def test_concurrent_reservations_never_overdraw_the_capture(store: RefundStore, ledger_exists: bool) -> None:
    answers = reserve_concurrently(store, ledger_exists=ledger_exists)
    accepted = [refund_id for refund_id, answer in answers.items() if answer == "accepted"]
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    assert ledger.in_flight <= ledger.captured
    assert Decimal("7.00") * len(accepted) <= Decimal("100.00") - (1 if ledger_exists else 0)


@pytest.mark.parametrize("ledger_exists", [True, False], ids=["existing-ledger", "ledger-opened-in-the-race"])
def test_every_concurrent_request_gets_a_definite_answer(store: RefundStore, ledger_exists: bool) -> None:
    answers = reserve_concurrently(store, ledger_exists=ledger_exists)
    assert len(answers) == THREADS
    assert set(answers.values()) == {"accepted", "refused"}


@pytest.mark.parametrize("ledger_exists", [True, False], ids=["existing-ledger", "ledger-opened-in-the-race"])
def test_every_accepted_refund_is_stored_and_counted_and_no_refused_one_is(
    store: RefundStore, ledger_exists: bool
) -> None:
    answers = reserve_concurrently(store, ledger_exists=ledger_exists)
    accepted = {refund_id for refund_id, answer in answers.items() if answer == "accepted"}
    ledger = store.get_ledger(CAPTURE_ID)
    assert ledger is not None
    assert set(ledger.refund_ids) - {"warm-up"} == accepted
    assert all(store.get_refund(refund_id) is not None for refund_id in accepted)
    assert all(store.get_refund(refund_id) is None for refund_id in set(answers) - accepted)
    assert ledger.available == ledger.captured - ledger.in_flight
