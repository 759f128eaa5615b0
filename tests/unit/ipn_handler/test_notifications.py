"""The IPN use case with doubles: a real verifier over test-signed messages, an in-memory store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from amazon_pay_refunds.adapters.mws.errors import AmazonPayError
from amazon_pay_refunds.adapters.mws.models import (
    AmazonRefundStatus,
    CaptureDetails,
    CaptureStatus,
    Price,
    RefundDetails,
)
from amazon_pay_refunds.adapters.sns import (
    DeploymentBinding,
    IpnAuthenticator,
    SnsCertificateTrust,
    SnsVerifier,
    parse_notification,
)
from amazon_pay_refunds.api.ipn_answers import IpnAnswer
from amazon_pay_refunds.core.lifecycle import (
    AttemptAccepted,
    AttemptOutcome,
    Transition,
    apply_observation,
    request_refund,
)
from amazon_pay_refunds.core.models import AttemptState, PaymentApi, RefundStatus
from amazon_pay_refunds.ports import SubscriptionNotConfirmed
from amazon_pay_refunds.use_cases.notifications import IpnService, order_reference_of
from tests.support.ipn_signing import (
    NOW,
    OTHER_SELLER,
    OTHER_TOPIC,
    SELLER,
    TOPIC,
    Signer,
    amazon_pay_message,
    refund_notification_xml,
)

from .doubles import CaptureDetailsSpy, MemoryStore

REFUND_ID = "ord-1-r1"
CAPTURE_ID = "S01-1111111-2222222-C000001"
OUR_AMAZON_REFUND_ID = "S01-1111111-2222222-R000001"
EXTERNAL_REFUND_ID = "S01-1111111-2222222-R000002"


@dataclass
class Resumed:
    calls: list[tuple[Transition, AttemptOutcome]] = field(default_factory=list)

    def __call__(self, transition: Transition, outcome: AttemptOutcome) -> None:
        self.calls.append((transition, outcome))


@dataclass
class SubscribeSpy:
    urls: list[str] = field(default_factory=list)
    fail: bool = False

    def __call__(self, url: str) -> None:
        self.urls.append(url)
        if self.fail:
            raise SubscriptionNotConfirmed("SNS answered 500")


@dataclass
class World:
    signer: Signer
    store: MemoryStore
    amazon: CaptureDetailsSpy
    resumed: Resumed
    subscribe: SubscribeSpy
    service: IpnService

    def refund_ipn(
        self,
        state: str,
        *,
        reference: str | None = f"{REFUND_ID}_1",
        amazon_refund_id: str = OUR_AMAZON_REFUND_ID,
        reason_code: str | None = None,
        refund_type: str = "SellerInitiated",
        seller_id: str = SELLER,
        nref: str | None = None,
        topic: str = TOPIC,
        amount: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        data = refund_notification_xml(
            amazon_refund_id=amazon_refund_id,
            refund_reference_id=reference,
            state=state,
            reason_code=reason_code,
            refund_type=refund_type,
            amount=amount or ("10.00" if reference == f"{REFUND_ID}_1" else "5.00"),
        )
        return self.post(
            amazon_pay_message(data, seller_id=seller_id, notification_reference_id=nref), topic=topic
        )

    def post(self, message: str, **envelope: Any) -> tuple[str, dict[str, str]]:
        from tests.support.sns_forge import headers_for

        document = self.signer.envelope(message, **envelope)
        return json.dumps(document), headers_for(document)

    def handle(self, posted: tuple[str, dict[str, str]]) -> tuple[int, str]:
        answer = IpnAnswer.of(self.service.handle(*posted))
        return answer.status, answer.reason


@pytest.fixture
def world() -> World:
    signer = Signer.sns()
    store = MemoryStore()
    store.add(
        request_refund(
            refund_id=REFUND_ID,
            seller_id=SELLER,
            amazon_capture_id=CAPTURE_ID,
            amount=Decimal("10.00"),
            currency_code="USD",
            seller_refund_note=None,
            soft_descriptor=None,
            metadata={},
            request_fingerprint="f",
            at=NOW,
        ).refund
    )
    amazon, resumed, subscribe = CaptureDetailsSpy(), Resumed(), SubscribeSpy()
    service = IpnService(
        authenticity=IpnAuthenticator(
            SnsVerifier(SnsCertificateTrust(), fetcher=signer.fetch, clock=lambda: NOW),
            DeploymentBinding.of(seller_ids=[SELLER, OTHER_SELLER]),
        ),
        store=store,
        amazon_pay=lambda: amazon,
        sandbox=True,
        max_processing_failure_retries=1,
        subscribe_url_fetcher=subscribe,
        on_attempt_outcome=resumed,
        clock=lambda: NOW,
    )
    return World(signer, store, amazon, resumed, subscribe, service)


def capture_listing(*refund_ids: str) -> CaptureDetails:
    return CaptureDetails(
        amazon_capture_id=CAPTURE_ID,
        capture_reference_id="c",
        capture_amount=Price(Decimal("100.00"), "USD"),
        refunded_amount=Price(Decimal("5.00"), "USD"),
        capture_fee=None,
        capture_status=CaptureStatus("Completed", None, None),
        id_list=refund_ids,
        creation_timestamp=datetime(2024, 4, 1, tzinfo=UTC),
        seller_capture_note=None,
        soft_descriptor=None,
        converted_amount=None,
        conversion_rate=None,
    )


def test_the_retry_seam_is_called_once_when_an_attempt_reaches_its_outcome(world: World) -> None:
    world.handle(world.refund_ipn("Pending"))
    assert world.resumed.calls == []

    declined = world.refund_ipn("Declined", reason_code="ProcessingFailure")
    first, again = world.handle(declined), world.handle(declined)

    assert (first, again) == ((200, "processed"), (200, "duplicate"))
    assert len(world.resumed.calls) == 1
    transition, outcome = world.resumed.calls[0]
    assert transition.refund.status is RefundStatus.RETRY_SCHEDULED
    assert (outcome.state, outcome.reason_code) == (AttemptState.DECLINED, "ProcessingFailure")


def test_the_retry_seam_is_not_called_for_a_late_report(world: World) -> None:
    world.handle(world.refund_ipn("Completed"))
    world.resumed.calls.clear()

    world.handle(world.refund_ipn("Declined", reason_code="AmazonRejected"))

    assert world.resumed.calls == []
    assert world.store.refunds[REFUND_ID].status is RefundStatus.COMPLETED


def test_another_sellers_ipn_naming_our_refund_is_not_applied_to_it(world: World) -> None:
    ipn = world.refund_ipn("Completed", seller_id=OTHER_SELLER, topic=OTHER_TOPIC)  # on its own topic
    status, reason = world.handle(ipn)

    assert (status, reason) == (200, "external_refund_unmatched")  # no open refund of that seller there
    assert world.store.refunds[REFUND_ID].status is RefundStatus.REQUESTED


def test_an_external_refund_is_recorded_on_the_capture_amazon_lists_it_on(world: World) -> None:
    world.amazon.details[CAPTURE_ID] = capture_listing(EXTERNAL_REFUND_ID)
    ipn = world.refund_ipn(
        "Completed", reference=None, amazon_refund_id=EXTERNAL_REFUND_ID, refund_type="AmazonA-ZRefund"
    )

    assert world.handle(ipn) == (200, "external_refund_recorded")
    assert world.handle(ipn) == (200, "external_refund_duplicate")
    assert world.store.externals == {
        (CAPTURE_ID, EXTERNAL_REFUND_ID): (Decimal("5.00"), "USD", "AmazonA-ZRefund")
    }


def test_an_external_refund_amazon_does_not_list_on_our_capture_is_not_recorded_there(world: World) -> None:
    world.amazon.details[CAPTURE_ID] = capture_listing(OUR_AMAZON_REFUND_ID)
    ipn = world.refund_ipn("Completed", reference=None, amazon_refund_id=EXTERNAL_REFUND_ID)

    assert world.handle(ipn) == (200, "external_refund_unmatched")
    assert world.store.externals == {}


def test_an_external_refund_on_an_order_without_open_refunds_of_ours_asks_amazon_nothing(
    world: World,
) -> None:
    ipn = world.refund_ipn(
        "Completed", reference="SellerCentral-42", amazon_refund_id="S01-9999999-9999999-R1"
    )

    assert world.handle(ipn) == (200, "external_refund_unmatched")
    assert world.amazon.calls == []


def test_a_declined_external_refund_moved_no_money_and_is_acknowledged(world: World) -> None:
    ipn = world.refund_ipn("Declined", reference=None, amazon_refund_id=EXTERNAL_REFUND_ID)

    assert world.handle(ipn) == (200, "external_refund_declined")
    assert world.amazon.calls == [] and world.store.writes == 0


def test_amazon_pay_unreachable_while_placing_an_external_refund_answers_503(world: World) -> None:
    world.amazon.error = AmazonPayError("ServiceUnavailable", "try later", http_status=503)
    ipn = world.refund_ipn("Completed", reference=None, amazon_refund_id=EXTERNAL_REFUND_ID)

    assert world.handle(ipn) == (503, "amazon_pay_unavailable")


def test_refund_details_without_an_amazon_refund_id_are_malformed(world: World) -> None:
    data = refund_notification_xml(
        amazon_refund_id="", refund_reference_id=f"{REFUND_ID}_1", state="Completed"
    )

    assert world.handle(world.post(amazon_pay_message(data))) == (400, "refund_details_invalid")


def test_a_refund_state_amazon_does_not_define_is_malformed(world: World) -> None:
    assert world.handle(world.refund_ipn("Refunded")) == (400, "refund_details_invalid")
    assert world.store.refunds[REFUND_ID].status is RefundStatus.REQUESTED


def test_other_notification_types_are_acknowledged_once_then_duplicates(world: World) -> None:
    message = amazon_pay_message("<AuthorizationNotification/>", notification_type="PaymentAuthorize")
    posted = world.post(message)

    assert world.handle(posted) == (200, "acknowledged")
    assert world.handle(posted) == (200, "duplicate")


def test_a_subscription_confirmation_that_sns_does_not_confirm_now_answers_503(world: World) -> None:
    world.subscribe.fail = True
    url = f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t0k"
    posted = world.post("confirm", message_type="SubscriptionConfirmation", subscribe_url=url, token="t0k")

    assert world.handle(posted) == (503, "subscription_confirm_failed")
    assert world.subscribe.urls == [url]


def test_answers_never_echo_the_body() -> None:
    answer = IpnAnswer(
        403, "signature_invalid", fields={"detail": "the signature does not match the message"}
    )

    assert answer.body() == {"status": "rejected", "reason": "signature_invalid"}


@pytest.mark.parametrize(
    ("identifier", "order"),
    [
        ("S02-8274313-3487267-R019346", "S02-8274313-3487267"),
        ("P01-1234567-1234567-C000001", "P01-1234567-1234567"),
        ("not-an-id", None),
        ("", None),
    ],
)
def test_the_order_reference_of_an_amazon_object_id(identifier: str, order: str | None) -> None:
    assert order_reference_of(identifier) == order


def test_a_refund_named_like_ours_that_is_not_one_of_its_attempts_is_external(world: World) -> None:
    """The seller's ERP refunds with RefundReferenceId `{refund_id}_7` (issue 9): never a late report of
    ours, and found on the capture of the refund it names even when that refund is final."""
    world.amazon.details[CAPTURE_ID] = capture_listing(EXTERNAL_REFUND_ID)
    refund = world.store.refunds[REFUND_ID]
    world.store.refunds[REFUND_ID] = replace(refund, status=RefundStatus.COMPLETED)  # not searched as open
    ipn = world.refund_ipn("Pending", reference=f"{REFUND_ID}_7", amazon_refund_id=EXTERNAL_REFUND_ID)

    assert world.handle(ipn) == (200, "external_refund_recorded")
    assert world.store.externals == {
        (CAPTURE_ID, EXTERNAL_REFUND_ID): (Decimal("5.00"), "USD", "SellerInitiated")
    }
    assert world.store.refunds[REFUND_ID].late_observations == ()


def test_a_report_of_our_attempt_with_another_amount_is_external_not_ours(world: World) -> None:
    world.amazon.details[CAPTURE_ID] = capture_listing(EXTERNAL_REFUND_ID)
    ipn = world.refund_ipn(
        "Completed", reference=f"{REFUND_ID}_1", amazon_refund_id=EXTERNAL_REFUND_ID, amount="15.00"
    )

    assert world.handle(ipn) == (200, "external_refund_recorded")
    refund = world.store.refunds[REFUND_ID]
    assert refund.status is RefundStatus.REQUESTED and refund.latest_attempt.amazon_refund_id is None


# --- Amazon Pay API v2 (issue 14): the message names the object; the refund is read with Get Refund -------

V2_REFUND_ID = "v2-ord-1-r1"


def v2_message(object_id: str, *, object_type: str = "REFUND", notification_id: str = "n-v2-1") -> str:
    return json.dumps(
        {
            "MerchantID": SELLER,
            "ObjectType": object_type,
            "ObjectId": object_id,
            "ChargePermissionId": "S01-1111111-2222222",
            "NotificationType": "STATE_CHANGE",
            "NotificationId": notification_id,
            "NotificationVersion": "V2",
        }
    )


def add_v2_refund(world: World, amazon_refund_id: str | None) -> None:
    refund = request_refund(
        refund_id=V2_REFUND_ID,
        seller_id=SELLER,
        amazon_capture_id=CAPTURE_ID,
        amount=Decimal("10.00"),
        currency_code="USD",
        seller_refund_note=None,
        soft_descriptor=None,
        metadata={},
        request_fingerprint="f",
        at=NOW,
        api=PaymentApi.V2,
    ).refund
    if amazon_refund_id is not None:
        accepted = AttemptAccepted(1, amazon_refund_id, AttemptState.PENDING, None)
        refund = apply_observation(refund, accepted, at=NOW, max_processing_failure_retries=1).refund
    world.store.add(refund)


def v2_refund_read(state: str, reason_code: str | None = None) -> RefundDetails:
    return RefundDetails(
        amazon_refund_id=OUR_AMAZON_REFUND_ID,
        refund_reference_id="",
        refund_type="Untyped",
        refund_amount=Price(Decimal("10.00"), "USD"),
        fee_refunded=None,
        creation_timestamp=NOW,
        refund_status=AmazonRefundStatus(state, NOW, reason_code, None),
        seller_refund_note=None,
        soft_descriptor=None,
        converted_amount=None,
        conversion_rate=None,
        amazon_capture_id=f"v2:{CAPTURE_ID}",
    )


def test_parse_a_v2_notification() -> None:
    notification = parse_notification(v2_message(OUR_AMAZON_REFUND_ID))
    assert notification.is_v2
    assert (notification.seller_id, notification.object_type, notification.object_id) == (
        SELLER, "REFUND", OUR_AMAZON_REFUND_ID,
    )  # fmt: skip
    assert notification.notification_reference_id == "n-v2-1"


def test_a_v2_refund_ipn_reads_the_refund_and_completes_our_attempt_once(world: World) -> None:
    add_v2_refund(world, OUR_AMAZON_REFUND_ID)
    world.amazon.refund_details[f"v2:{OUR_AMAZON_REFUND_ID}"] = v2_refund_read("Completed")
    posted = world.post(v2_message(OUR_AMAZON_REFUND_ID))

    # Again once final: the charge's ledger still names it as ours; a duplicate, nothing changes.
    assert (world.handle(posted), world.handle(posted)) == ((200, "processed"), (200, "duplicate"))
    stored = world.store.get_refund(V2_REFUND_ID)
    assert stored is not None and stored.status is RefundStatus.COMPLETED
    assert world.amazon.calls == [f"v2:{OUR_AMAZON_REFUND_ID}"] * 2
    assert len(world.resumed.calls) == 1


def test_a_v2_processing_failure_schedules_the_retry(world: World) -> None:
    add_v2_refund(world, OUR_AMAZON_REFUND_ID)
    world.amazon.refund_details[f"v2:{OUR_AMAZON_REFUND_ID}"] = v2_refund_read(
        "Declined", "ProcessingFailure"
    )
    assert world.handle(world.post(v2_message(OUR_AMAZON_REFUND_ID))) == (200, "processed")
    stored = world.store.get_refund(V2_REFUND_ID)
    assert stored is not None and stored.status is RefundStatus.RETRY_SCHEDULED


def test_a_v2_ipn_while_our_attempt_awaits_its_answer_is_redelivered(world: World) -> None:
    add_v2_refund(world, None)  # Create Refund sent, its answer not recorded yet
    world.amazon.refund_details[f"v2:{OUR_AMAZON_REFUND_ID}"] = v2_refund_read("Completed")
    assert world.handle(world.post(v2_message(OUR_AMAZON_REFUND_ID))) == (503, "v2_refund_not_placed_yet")


def test_a_v2_refund_by_others_refunded_on_a_charge_without_a_ledger_is_left_to_refunded_amount(
    world: World,
) -> None:
    world.amazon.refund_details[f"v2:{OUR_AMAZON_REFUND_ID}"] = v2_refund_read("Completed")
    assert world.handle(world.post(v2_message(OUR_AMAZON_REFUND_ID))) == (200, "external_refund_no_ledger")
    assert world.store.externals == {}


def test_a_v2_charge_notification_is_acknowledged_once(world: World) -> None:
    posted = world.post(v2_message(CAPTURE_ID, object_type="CHARGE", notification_id="n-v2-charge"))
    assert (world.handle(posted), world.handle(posted)) == ((200, "acknowledged"), (200, "duplicate"))
    assert world.amazon.calls == []
