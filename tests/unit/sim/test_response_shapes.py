"""Answers have the shape and namespace of Amazon's real responses (the shared fixtures)."""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from amazon_pay_sim import Simulator
from tests.support.sim import NAMESPACE, Answer, FakeClock, call, refund_params


def paths(root: Element) -> set[str]:
    """Every element path by local name, e.g. RefundResponse/RefundResult/RefundDetails/RefundStatus/State."""
    found: set[str] = set()

    def walk(element: Element, prefix: str) -> None:
        path = f"{prefix}/{element.tag.split('}')[-1]}" if prefix else element.tag.split("}")[-1]
        found.add(path)
        for child in element:
            walk(child, path)

    walk(root, "")
    return found


def fixture_root(fixtures_dir: Path, name: str) -> Element:
    return fromstring((fixtures_dir / "mws" / name).read_bytes())  # type: ignore[no-any-return]


def assert_shaped_like(answer: Answer, fixture: Element) -> None:
    assert answer.root.tag == fixture.tag
    assert answer.root.tag.startswith("{" + NAMESPACE + "}")
    missing = paths(fixture) - paths(answer.root)
    assert not missing, f"elements the real answer has and ours lacks: {sorted(missing)}"


@pytest.fixture
def refunded(sim: Simulator, clock: FakeClock) -> tuple[str, Answer]:
    capture_id = sim.create_capture("100.00", "USD")
    answer = call(
        sim,
        clock,
        "Refund",
        refund_params(capture_id, "r1", SellerRefundNote="testing", SoftDescriptor="test"),
    )
    return capture_id, answer


def test_refund_answers_like_refund_response(fixtures_dir: Path, refunded: tuple[str, Answer]) -> None:
    assert_shaped_like(refunded[1], fixture_root(fixtures_dir, "RefundResponse.xml"))


def test_get_refund_details_answers_like_the_fixture(
    fixtures_dir: Path, sim: Simulator, clock: FakeClock, refunded: tuple[str, Answer]
) -> None:
    answer = call(
        sim, clock, "GetRefundDetails", {"AmazonRefundId": refunded[1].field("AmazonRefundId") or ""}
    )
    assert_shaped_like(answer, fixture_root(fixtures_dir, "GetRefundDetails.xml"))


def test_get_capture_details_answers_like_the_fixture(
    fixtures_dir: Path, sim: Simulator, clock: FakeClock, refunded: tuple[str, Answer]
) -> None:
    answer = call(sim, clock, "GetCaptureDetails", {"AmazonCaptureId": refunded[0]})
    assert_shaped_like(answer, fixture_root(fixtures_dir, "GetCaptureDetailsResponse.xml"))


def test_get_service_status_answers_like_the_fixture(
    fixtures_dir: Path, sim: Simulator, clock: FakeClock
) -> None:
    assert_shaped_like(
        call(sim, clock, "GetServiceStatus"), fixture_root(fixtures_dir, "GetServiceStatusResponseGreen.xml")
    )


def test_an_error_answers_like_error_response(fixtures_dir: Path, sim: Simulator, clock: FakeClock) -> None:
    answer = call(sim, clock, "GetServiceStatus", secret_key="wrong")
    assert_shaped_like(answer, fixture_root(fixtures_dir, "ErrorResponse.xml"))


def test_throttling_answers_like_throttled_error_response(
    fixtures_dir: Path, sim: Simulator, clock: FakeClock
) -> None:
    sim.add_fault("GetServiceStatus", "throttle")
    answer = call(sim, clock, "GetServiceStatus")
    assert_shaped_like(answer, fixture_root(fixtures_dir, "ThrottledErrorResponse.xml"))
    assert answer.field("Type") in (None, "")


def test_timestamps_are_iso_8601_utc_with_milliseconds(
    sim: Simulator, clock: FakeClock, refunded: tuple[str, Answer]
) -> None:
    assert refunded[1].field("CreationTimestamp") == "2024-05-01T12:00:00.000Z"
