"""Our Amazon Pay client against the simulator over real HTTP: the acceptance of the protocol layer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from amazon_pay_refunds.adapters.mws.client import AmazonPayClient, deadline_in
from amazon_pay_refunds.adapters.mws.credentials import SellerCredentials
from amazon_pay_refunds.adapters.mws.endpoints import Endpoint
from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_sim import Simulator
from amazon_pay_sim.server import ServerHandle
from amazon_pay_sim.simulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_SELLER_ID, MWS_PATH

CREDENTIALS = SellerCredentials(DEFAULT_SELLER_ID, DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(settle_seconds=3600, throttling=False, fault_hold_seconds=3)


@pytest.fixture
def served(simulator: Simulator) -> Iterator[ServerHandle]:
    handle = simulator.serve(host="127.0.0.1", port=0)
    try:
        yield handle
    finally:
        handle.shutdown()


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        time.sleep(seconds)


def make_client(
    handle: ServerHandle, credentials: SellerCredentials = CREDENTIALS, **options: object
) -> AmazonPayClient:
    endpoint = Endpoint("http", f"127.0.0.1:{handle.port}", MWS_PATH)
    defaults: dict[str, object] = {"timeout": (1.0, 1.0), "base_delay": 0.05, "max_delay": 0.2}
    return AmazonPayClient(credentials, endpoint, **{**defaults, **options})  # type: ignore[arg-type]


def test_full_refund_is_pending_then_completed_and_the_capture_shows_it(
    simulator: Simulator, served: ServerHandle
) -> None:
    capture_id = simulator.create_capture("100.00", "USD")
    client = make_client(served)

    refund = client.refund(capture_id, "ord-1001_1", Decimal("100.00"), "USD", seller_refund_note="Returned")
    assert refund.refund_status.state == "Pending"
    assert refund.refund_amount.amount == Decimal("100.00")
    assert refund.request_id

    simulator.settle(everything=True)
    assert client.get_refund_details(refund.amazon_refund_id).refund_status.state == "Completed"
    capture = client.get_capture_details(capture_id)
    assert capture.refunded_amount.amount == Decimal("100.00")
    assert capture.id_list == (refund.amazon_refund_id,)


def test_partial_refunds_accumulate_on_the_capture(simulator: Simulator, served: ServerHandle) -> None:
    capture_id = simulator.create_capture("50.00", "EUR")
    client = make_client(served)
    first = client.refund(capture_id, "ord-2_1", Decimal("10.00"), "EUR")
    second = client.refund(capture_id, "ord-3_1", Decimal("15.50"), "EUR")
    simulator.settle(everything=True)
    capture = client.get_capture_details(capture_id)
    assert capture.refunded_amount.amount == Decimal("25.50")
    assert set(capture.id_list) == {first.amazon_refund_id, second.amazon_refund_id}


def test_jpy_refund_has_no_decimals(simulator: Simulator, served: ServerHandle) -> None:
    capture_id = simulator.create_capture("5000", "JPY")
    refund = make_client(served).refund(capture_id, "jp-1_1", Decimal("1200"), "JPY")
    assert refund.refund_amount.amount == Decimal("1200")


def test_resubmitting_an_unchanged_refund_returns_the_same_refund(
    simulator: Simulator, served: ServerHandle
) -> None:
    capture_id = simulator.create_capture("100.00", "USD")
    client = make_client(served)
    first = client.refund(capture_id, "same_1", Decimal("5.00"), "USD")
    again = client.refund(capture_id, "same_1", Decimal("5.00"), "USD")
    assert again.amazon_refund_id == first.amazon_refund_id


def _error(call: object) -> AmazonPayError:
    assert callable(call)
    with pytest.raises(AmazonPayError) as caught:
        call()
    return caught.value


def test_amazon_errors_surface_with_code_status_and_retryability(
    simulator: Simulator, served: ServerHandle
) -> None:
    client = make_client(served)
    usd = simulator.create_capture("100.00", "USD")
    small = simulator.create_capture("10.00", "USD")
    pending = simulator.create_capture("10.00", "USD", state="Pending")
    client.refund(usd, "dup_1", Decimal("1.00"), "USD")
    simulation = json.dumps({"SandboxSimulation": {"State": "Declined", "ReasonCode": "Nonsense"}})

    cases = {
        "DuplicateRequest": lambda: client.refund(usd, "dup_1", Decimal("2.00"), "USD"),
        "CurrencyMismatch": lambda: client.refund(usd, "cur_1", Decimal("1.00"), "EUR"),
        "TransactionAmountExceeded": lambda: client.refund(small, "big_1", Decimal("11.51"), "USD"),
        "CaptureNotRefundable": lambda: client.refund(pending, "pend_1", Decimal("1.00"), "USD"),
        "InvalidSandboxSimulationSpecified": lambda: client.refund(
            usd, "sim_1", Decimal("1.00"), "USD", seller_refund_note=simulation
        ),
        "InvalidParameterValue": lambda: client.get_refund_details("S01-0000000-0000000-R000000"),
    }
    statuses = {"CaptureNotRefundable": 405}
    for code, call in cases.items():
        error = _error(call)
        assert (error.code, error.http_status, error.retryable) == (code, statuses.get(code, 400), False)
        assert error.request_id


def test_eleventh_refund_on_a_capture_is_refused(simulator: Simulator, served: ServerHandle) -> None:
    capture_id = simulator.create_capture("100.00", "USD")
    client = make_client(served)
    for n in range(10):
        client.refund(capture_id, f"many-{n}_1", Decimal("1.00"), "USD")
    error = _error(lambda: client.refund(capture_id, "many-10_1", Decimal("1.00"), "USD"))
    assert (error.code, error.retryable) == ("TransactionCountExceeded", False)


def test_wrong_secret_is_signature_does_not_match(simulator: Simulator, served: ServerHandle) -> None:
    forged = SellerCredentials(DEFAULT_SELLER_ID, DEFAULT_ACCESS_KEY, "not-the-secret")
    error = _error(lambda: make_client(served, forged).get_service_status())
    assert (error.code, error.http_status, error.retryable) == ("SignatureDoesNotMatch", 403, False)
    assert "not-the-secret" not in str(error)


def test_unknown_access_key_is_refused(simulator: Simulator, served: ServerHandle) -> None:
    stranger = SellerCredentials(DEFAULT_SELLER_ID, "UNKNOWNKEY", DEFAULT_SECRET_KEY)
    error = _error(lambda: make_client(served, stranger).get_service_status())
    assert (error.code, error.http_status) == ("InvalidAccessKeyId", 403)


@pytest.mark.parametrize(
    ("fault", "code", "status"), [("503", "ServiceUnavailable", 503), ("500", None, 500)]
)
def test_server_errors_are_retried_and_then_succeed(
    simulator: Simulator, served: ServerHandle, fault: str, code: str | None, status: int
) -> None:
    capture_id = simulator.create_capture("100.00", "USD")
    simulator.add_fault("Refund", fault, count=2)
    sleep = RecordingSleep()
    refund = make_client(served, sleep=sleep).refund(capture_id, "flaky_1", Decimal("3.00"), "USD")
    assert refund.refund_status.state == "Pending"
    assert len(sleep.calls) == 2
    refunds = [c for c in simulator.calls() if c["action"] == "Refund"]
    assert len(refunds) == 3


def test_persistent_503_is_retryable_after_bounded_attempts(
    simulator: Simulator, served: ServerHandle
) -> None:
    capture_id = simulator.create_capture("100.00", "USD")
    simulator.add_fault("Refund", "503", count=10)
    error = _error(
        lambda: make_client(served, max_attempts=3).refund(capture_id, "down_1", Decimal("1"), "USD")
    )
    assert (error.http_status, error.retryable) == (503, True)
    assert len([c for c in simulator.calls() if c["action"] == "Refund"]) == 3


def test_throttling_backs_off_and_never_passes_the_deadline(
    simulator: Simulator, served: ServerHandle
) -> None:
    simulator.set_throttling(True)
    capture_id = simulator.create_capture("100.00", "USD")
    sleep = RecordingSleep()
    client = make_client(served, sleep=sleep, max_attempts=20, base_delay=0.2, max_delay=1.0)
    deadline = deadline_in(1.5)
    outcomes: list[str] = []
    for n in range(6):
        try:
            client.refund(capture_id, f"burst-{n}_1", Decimal("1.00"), "USD", deadline=deadline)
            outcomes.append("ok")
        except AmazonPayError as error:
            # Near the deadline the last attempt may be cut short by the remaining time instead.
            assert error.code in ("RequestThrottled", "RequestTimeout")
            assert error.retryable
            outcomes.append(error.code)
    assert time.monotonic() <= deadline + 0.25
    assert outcomes[:2] == ["ok", "ok"]  # the sandbox Refund quota is a burst of 2
    assert sleep.calls, "throttled calls were not retried with backoff"
    assert "RequestThrottled" in outcomes


def test_timeout_is_retryable_and_accept_then_timeout_is_safe_to_resubmit(
    simulator: Simulator, served: ServerHandle
) -> None:
    capture_id = simulator.create_capture("100.00", "USD")
    simulator.add_fault("Refund", "accept-then-timeout", count=1)
    client = make_client(served, timeout=(0.5, 0.5), max_attempts=1)
    error = _error(lambda: client.refund(capture_id, "lost_1", Decimal("4.00"), "USD"))
    assert (error.code, error.retryable) == ("RequestTimeout", True)
    # The refund was really made; re-submitting the unchanged reference id returns it instead of a second one.
    refund = client.refund(capture_id, "lost_1", Decimal("4.00"), "USD")
    assert client.get_capture_details(capture_id).id_list == (refund.amazon_refund_id,)
