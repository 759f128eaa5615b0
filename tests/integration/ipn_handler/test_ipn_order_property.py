"""(c) Any order and duplication of one attempt's IPNs converges to what the in-order sequence gives."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.core.models import Refund

from .conftest import Endpoint, create_refund
from .local_ipns import LocalIpns, amazon_refund_id, trust_local_authority

# The IPN sequences of one attempt: (state, reason code).
SEQUENCES = [
    (("Pending", None), ("Completed", None)),
    (("Pending", None), ("Declined", "AmazonRejected")),
    (("Pending", None), ("Declined", "ProcessingFailure")),
]
_ids = itertools.count(1)


def deliveries(draw: st.DrawFn) -> tuple[int, list[int]]:
    """A sequence, and the order its IPNs arrive in: each at least once, any order, repeats allowed."""
    sequence = draw(st.sampled_from(range(len(SEQUENCES))))
    size = len(SEQUENCES[sequence])
    order = draw(st.permutations(range(size)))
    extra = draw(st.lists(st.integers(0, size - 1), max_size=4))
    arrival = list(order)
    for index in extra:
        arrival.insert(draw(st.integers(0, len(arrival))), index)
    return sequence, arrival


def run(endpoint: Endpoint, ipns: LocalIpns, store: RefundStore, sequence: int, arrival: list[int]) -> Refund:
    number = next(_ids)
    refund_id = f"prop-{number}"
    capture_id = f"S01-1234567-{number:07d}-C000001"
    create_refund(store, refund_id, capture_id=capture_id)
    events = [
        ipns.refund_event(refund_id, state, reason_code=reason, notification_reference_id=f"{refund_id}-n{i}")
        for i, (state, reason) in enumerate(SEQUENCES[sequence])
    ]
    for index in arrival:
        answer = endpoint.post(events[index])
        assert answer.status == 200, answer.body
    refund = store.get_refund(refund_id)
    assert refund is not None
    return refund


def outcome(refund: Refund, store: RefundStore) -> dict[str, Any]:
    ledger = store.get_ledger(refund.amazon_capture_id)
    assert ledger is not None
    return {
        "status": refund.status,
        "reason_code": refund.reason_code,
        "attempts": [
            (a.state, a.reason_code, a.amazon_refund_id == amazon_refund_id(refund.refund_id, a.attempt))
            for a in refund.attempts
        ],
        "ledger": (ledger.in_flight, ledger.completed, ledger.external, ledger.available),
        "last_entry": (refund.history[-1].to, refund.history[-1].reason_code, refund.history[-1].declined),
    }


def is_subsequence(short: list[Any], long: list[Any]) -> bool:
    remaining = iter(long)
    return all(item in remaining for item in short)


@pytest.fixture
def ipns(monkeypatch: pytest.MonkeyPatch, endpoint: Endpoint) -> LocalIpns:
    return trust_local_authority(monkeypatch, endpoint)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_and_duplication_of_an_attempts_ipns_converges_to_the_in_order_result(
    endpoint: Endpoint, ipns: LocalIpns, store: RefundStore, data: st.DataObject
) -> None:
    sequence, arrival = data.draw(st.composite(deliveries)())
    in_order = run(endpoint, ipns, store, sequence, list(range(len(SEQUENCES[sequence]))))
    shuffled = run(endpoint, ipns, store, sequence, arrival)
    first_arrivals = list(dict.fromkeys(arrival))
    deduplicated = run(endpoint, ipns, store, sequence, first_arrivals)

    assert outcome(shuffled, store) == outcome(in_order, store)
    # History only moves forward: what an out-of-order delivery stores is a part of the in-order history
    # (a Pending after the final state is kept as a late observation, never as a step back).
    statuses = [h.to for h in shuffled.history]
    assert is_subsequence(statuses, [h.to for h in in_order.history])
    # Duplicates change nothing and write nothing: the same refund, at the same version, as without them.
    assert [(h.from_, h.to, h.reason_code) for h in shuffled.history] == [
        (h.from_, h.to, h.reason_code) for h in deduplicated.history
    ]
    assert shuffled.version == deduplicated.version
