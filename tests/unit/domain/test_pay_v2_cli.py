"""The operators' CLI names what a refund is made on: a v1 capture or an API v2 charge (issue 14)."""

from __future__ import annotations

from dataclasses import replace

from amazon_pay_refunds.core.models import PaymentApi
from refunds_cli.listing import table
from refunds_cli.status import describe
from tests.support.domain import new_refund


def test_status_and_list_say_charge_for_a_v2_refund_and_capture_for_a_v1_one() -> None:
    v1 = new_refund("r-v1")
    v2 = replace(new_refund("r-v2"), api=PaymentApi.V2)
    assert f"capture   {v1.amazon_capture_id}" in describe(v1)
    assert f"charge    {v2.amazon_capture_id} (API v2)" in describe(v2)
    rows = table([v1, v2]).splitlines()
    assert rows[1].split()[-1] == v1.amazon_capture_id
    assert rows[2].split()[-1] == f"v2:{v2.amazon_capture_id}"
