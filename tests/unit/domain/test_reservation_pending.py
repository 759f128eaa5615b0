"""A refund stored before its reservation (capture unknown, Amazon unreachable) holds nothing."""

from __future__ import annotations

from dataclasses import replace

from amazon_pay_refunds.core.ledger import EffectKind
from amazon_pay_refunds.core.lifecycle import PermanentlyRefused
from amazon_pay_refunds.core.models import RefundStatus
from amazon_pay_refunds.core.references import is_amazon_capture_id
from tests.support.domain import new_refund, step


def test_refusing_a_refund_without_reservation_fails_it_and_releases_nothing() -> None:
    pending = replace(new_refund(), reservation_pending=True)
    transition = step(
        pending, PermanentlyRefused(1, "CaptureNotRefundable", cause="amazon:GetCaptureDetails")
    )
    assert transition.refund.status is RefundStatus.FAILED
    assert transition.effect is None


def test_refusing_a_reserved_refund_still_releases_its_reservation() -> None:
    transition = step(new_refund(), PermanentlyRefused(1, "CaptureNotRefundable"))
    assert transition.effect is not None and transition.effect.kind is EffectKind.RELEASE


def test_capture_ids_have_amazons_shape() -> None:
    assert is_amazon_capture_id("S01-9821095-1837200-C041953")
    assert is_amazon_capture_id("P01-1234567-1234567-C000001")
    assert not is_amazon_capture_id("S01-9821095-1837200-R041953")  # a refund id
    assert not is_amazon_capture_id("S01-9821095-1837200-C041953\n")
