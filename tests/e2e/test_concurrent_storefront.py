"""A storefront under load, with Amazon's sandbox throttling on (Refund: burst 2, one more every 2 s).

Each POST /refunds runs in an execution environment of its own, as in Lambda, so concurrent requests do not
queue behind each other's throttled Refund retries: every answer is the service's own (202 Accepted, also
as `Requested` when Amazon throttled it past its deadline; 200 for a replay; 422 for an overdraw), never a
gateway's 5xx, and the capture ledgers stay exact under truly concurrent writers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from refunds_local.clients import Answer, SimulatorControl, storefront_of
from refunds_local.stack import EmbeddedStack

from .conftest import TEMPLATE, refund_body

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    """The simulator's default throttling on; the template's own function timeouts."""
    with EmbeddedStack(
        port=0, sim_port=0, throttling=True, settle_seconds=3600, pump=False, template_path=TEMPLATE
    ) as running:
        yield running


def post_all(stack: EmbeddedStack, bodies: list[dict[str, Any]]) -> list[Answer]:
    """All at once, each on its own connection (a storefront's many web workers)."""

    def post(body: dict[str, Any]) -> Answer:
        return storefront_of(stack, timeout=60).post_refund(body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def assert_ledger_exact(stack: EmbeddedStack, capture_id: str, accepted: dict[str, Decimal]) -> None:
    """The capture's ledger reserves exactly the accepted refunds it holds, never more than was captured;
    an accepted refund it does not hold is `Requested` with its reservation pending (Amazon's
    GetCaptureDetails was throttled: the reconciler reserves it later, or fails it) and nothing of it was
    sent to Amazon; Amazon refunded only reserved refunds."""
    storefront = storefront_of(stack)
    ledger = storefront.get_capture(capture_id).body
    reserved = {r["refund_id"] for r in ledger["refunds"]}
    assert reserved <= set(accepted)
    held = Decimal(ledger["in_flight"]) + Decimal(ledger["completed"])
    assert held == sum((accepted[refund_id] for refund_id in reserved), Decimal("0"))
    assert held <= Decimal(ledger["captured"])
    assert Decimal(ledger["available"]) == Decimal(ledger["captured"]) - held - Decimal(ledger["external"])
    for refund_id in set(accepted) - reserved:
        assert storefront.get_refund(refund_id).body["status"] == "Requested"
    at_amazon = SimulatorControl(stack.sim_url).capture(capture_id)["refunds"]
    assert {r["refund_reference_id"].rsplit("_", 1)[0] for r in at_amazon} <= reserved
    assert sum((Decimal(r["amount"]) for r in at_amazon), Decimal("0")) <= held


def test_twenty_requests_of_4_on_one_50_capture_answer_without_5xx_and_accept_at_most_50(
    stack: EmbeddedStack,
) -> None:
    capture_id = SimulatorControl(stack.sim_url).create_capture("50.00", "USD")
    bodies = [refund_body(capture_id, "4.00") for _ in range(20)]
    answers = post_all(stack, bodies)

    assert {a.status for a in answers} <= {202, 422}, [(a.status, a.body) for a in answers]
    assert {a.error_code for a in answers if a.status == 422} <= {"RefundExceedsCapture"}
    accepted = {
        b["refund_id"]: Decimal("4.00") for b, a in zip(bodies, answers, strict=True) if a.status == 202
    }
    assert len(accepted) == 12  # 12 x 4.00 = 48.00; a thirteenth would overdraw 50.00
    # Amazon throttled some past the request's deadline: they are accepted as Requested, not lost.
    assert {a.body["status"] for a in answers if a.status == 202} <= {"Pending", "Requested"}
    assert_ledger_exact(stack, capture_id, accepted)


def test_fifty_mixed_requests_with_replays_answer_202_200_or_422_and_every_ledger_is_exact(
    stack: EmbeddedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator = SimulatorControl(stack.sim_url)
    captured = {
        simulator.create_capture(amount, "USD"): Decimal(amount) for amount in ("50.00", "30.00", "20.00")
    }
    amounts = ("4.00", "7.50", "12.00", "25.00", "3.00")
    originals = [
        refund_body(capture_id, amounts[index % len(amounts)])
        for index, capture_id in enumerate(list(captured) * 14)
    ][:40]
    replays = [dict(body) for body in originals[:10]]  # the same requests again, at the same time
    bodies = originals + replays
    random.Random(11).shuffle(bodies)
    answers = post_all(stack, bodies)

    assert {a.status for a in answers} <= {200, 202, 422}, [(a.status, a.body) for a in answers]
    assert {a.error_code for a in answers if a.status == 422} <= {"RefundExceedsCapture"}
    by_refund: dict[str, list[Answer]] = {}
    for body, answer in zip(bodies, answers, strict=True):
        by_refund.setdefault(body["refund_id"], []).append(answer)
    accepted: dict[str, dict[str, Decimal]] = {capture_id: {} for capture_id in captured}
    undecided: set[str] = set()
    for body in originals:
        seen = by_refund[body["refund_id"]]
        statuses = {answer.status for answer in seen}
        if statuses == {422}:
            continue
        if 422 in statuses:
            # Two copies at once: one read the capture and was refused (nothing stored), the other could not
            # read it (Amazon throttled GetCaptureDetails) and stored the refund unreserved, `Requested`:
            # undecided, never reserved against the 422 and never sent to Amazon; the reconciler decides.
            assert {a.body["status"] for a in seen if a.status != 422} == {"Requested"}, seen
            undecided.add(body["refund_id"])
            continue
        # A refund accepted once is the same refund to every replay: never refused, never another one.
        assert {answer.status for answer in seen} <= {200, 202}, [(a.status, a.body) for a in seen]
        assert len({(a.body["refund_id"], a.body["amount"], a.body["amazon_capture_id"]) for a in seen}) == 1
        assert seen[0].body["amount"] == body["amount"]
        accepted[body["amazon_capture_id"]][body["refund_id"]] = Decimal(body["amount"])
    assert all(len(by_refund[body["refund_id"]]) == 2 for body in replays)
    for capture_id in captured:
        assert_ledger_exact(stack, capture_id, accepted[capture_id])
        ledger = storefront_of(stack).get_capture(capture_id).body
        assert not undecided & {r["refund_id"] for r in ledger["refunds"]}

    # Each line of the functions' output is one whole JSON document (a log line or a metric blob), and a
    # RefundApi log line names RefundApi and the refund its request was about.
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    accepted_lines = [line for line in lines if line.get("message") == "refund accepted"]
    assert accepted_lines
    assert {line["function_name"] for line in accepted_lines} == {stack.function("RefundApiFunction").name}
    assert {line["refund_id"] for line in accepted_lines} <= {body["refund_id"] for body in originals}
