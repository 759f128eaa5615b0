"""Twenty refunds on one capture at once, whose sum exceeds it: the ledger is never overdrawn.

The requests run in 20 threads through the very call the POST /refunds route makes
(`RefundService.request_refund`), answered through `http_errors` as the handler answers. They do not go
through `lambda_handler` itself: Powertools' resolver keeps the current event on class attributes
(`BaseRouter.current_event`), so one process cannot run two handler invocations at once — Lambda never
does; concurrent invocations run in separate execution environments. Everything after the resolver runs
concurrently here, and the shared runtime (one boto3 client, one HTTP session) is harsher than Lambda.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from botocore.endpoint import Endpoint

from amazon_pay_refunds.adapters.mws.client import deadline_in
from amazon_pay_refunds.api.http_errors import error_response
from amazon_pay_refunds.composition import lambda_services
from amazon_pay_refunds.use_cases.refund_requests import RefundRequest
from amazon_pay_sim import Simulator
from tests.support.refund_api_stack import Api

REQUESTS = 20


@pytest.fixture
def serialised_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-memory backend is not thread-safe, so its requests are served one at a time. DynamoDB
    itself is atomic per request (a TransactWriteItems is all-or-nothing with its conditions), so this only
    removes moto's own races: the requests still interleave between their DynamoDB calls, and their calls
    to Amazon (the simulator, over HTTP) run fully in parallel."""
    lock = threading.Lock()
    original = getattr(Endpoint, "_do_get_response")  # noqa: B009 - moto's private method, patched

    def one_at_a_time(self: Endpoint, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(Endpoint, "_do_get_response", one_at_a_time)
    yield


def test_parallel_refunds_never_overdraw_the_capture_and_each_gets_a_definite_answer(
    api: Api, capture: Callable[..., str], simulator: Simulator, serialised_moto: None
) -> None:
    capture_id = capture("100.00")
    start = threading.Barrier(REQUESTS)

    def request(index: int) -> tuple[int, str]:
        service = lambda_services().refund_requests()
        wanted = RefundRequest(f"par-{index}", capture_id, Decimal("10.00"), "USD")
        start.wait()
        try:
            outcome = service.request_refund(wanted, deadline=deadline_in(20))
        except Exception as error:
            response = error_response(error)
            body: Any = response.body
            return response.status_code, body["error"]["code"]
        return (202 if outcome.created else 200), outcome.refund.status.value

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        answers = list(pool.map(request, range(REQUESTS)))

    assert {answer for answer in answers} <= {(202, "Pending"), (422, "RefundExceedsCapture")}
    accepted = [f"par-{i}" for i, (status, _) in enumerate(answers) if status == 202]
    refused = [f"par-{i}" for i, (status, _) in enumerate(answers) if status == 422]
    assert len(accepted) * Decimal("10.00") <= Decimal("100.00")
    assert len(accepted) == 10  # whatever fits is taken: refusals are not just the losers of races
    assert all(api.get_refund(refund_id).body["status"] == "Pending" for refund_id in accepted)
    assert all(api.get_refund(refund_id).status == 404 for refund_id in refused)
    ledger = api.get_capture(capture_id).body
    assert (ledger["in_flight"], ledger["available"]) == ("100.00", "0.00")
    at_amazon = simulator.capture_view(capture_id)["refunds"]
    assert sorted(r["refund_reference_id"] for r in at_amazon) == sorted(f"{r}_1" for r in accepted)
