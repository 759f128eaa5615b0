"""A v2 CHARGEBACK IPN (issue 14) names the chargeback (ObjectId) and its ChargePermissionId, not the charge:
it is recorded against the seller's charge permission, once per chargeback id, without asking Amazon."""

from __future__ import annotations

import json

from tests.support.ipn_signing import SELLER

from .test_notifications import World, v2_message, world  # noqa: F401 - the fixture

PERMISSION = "S01-1111111-2222222"
CHARGEBACK = "S01-1111111-2222222-B000001"


def test_a_chargeback_ipn_is_recorded_against_its_charge_permission_once(world: World) -> None:  # noqa: F811
    posted = world.post(v2_message(CHARGEBACK, object_type="CHARGEBACK", notification_id="n-cb-1"))
    again = world.post(v2_message(CHARGEBACK, object_type="CHARGEBACK", notification_id="n-cb-2"))

    # A redelivery, or another notification about the same chargeback, records nothing new.
    assert [world.handle(posted), world.handle(again), world.handle(posted)] == [
        (200, "chargeback_recorded"), (200, "duplicate"), (200, "duplicate"),
    ]  # fmt: skip
    assert [c.chargeback_id for c in world.store.chargebacks(SELLER, PERMISSION)] == [CHARGEBACK]
    assert world.amazon.calls == []  # nothing to read: the message names all it tells
    assert world.store.writes == 1


def test_a_second_chargeback_on_the_same_permission_is_recorded_beside_the_first(world: World) -> None:  # noqa: F811
    second = f"{PERMISSION}-B000002"
    world.handle(world.post(v2_message(CHARGEBACK, object_type="CHARGEBACK", notification_id="n-cb-1")))
    answer = world.handle(world.post(v2_message(second, object_type="CHARGEBACK", notification_id="n-cb-3")))
    assert answer == (200, "chargeback_recorded")
    assert {c.chargeback_id for c in world.store.chargebacks(SELLER, PERMISSION)} == {CHARGEBACK, second}


def test_a_chargeback_ipn_without_its_charge_permission_is_malformed_and_records_nothing(
    world: World,  # noqa: F811
) -> None:
    message = json.loads(v2_message(CHARGEBACK, object_type="CHARGEBACK"))
    del message["ChargePermissionId"]
    assert world.handle(world.post(json.dumps(message))) == (400, "chargeback_without_charge_permission")
    assert world.store.chargeback_marks == {}
