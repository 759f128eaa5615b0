"""(a) Every real SNS fixture through POST /ipn: Amazon's own signatures and certificates, our answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from amazon_pay_refunds import runtime
from amazon_pay_refunds.adapters.dynamodb import RefundStore
from amazon_pay_refunds.adapters.mws.models import CaptureDetails, CaptureStatus, Price, RefundDetails
from amazon_pay_refunds.adapters.sns import (
    CertificateResponse,
    DeploymentBinding,
    IpnAuthenticator,
    SnsCertificateTrust,
    SnsVerifier,
)
from amazon_pay_refunds.use_cases.notifications import IpnService
from tests.support.ipn_signing import api_event
from tests.support.sns_forge import headers_for

from .conftest import Endpoint, create_refund, table_items

REFUND = "amazon-pay-refund-completed-eu-2017.json"
CAPTURE = "amazon-pay-capture-eu-2017.json"
ORDER_REFERENCE = "amazon-pay-order-reference-us-2015.json"
HELLO = [
    "aws-sns-hello-sigv1-2022.json",
    "aws-sns-hello-sigv1-subject-2022.json",
    "aws-sns-hello-sigv2-2022.json",
    "aws-sns-hello-sigv2-subject-2022.json",
]
FIXTURE_REFUND_ID = "S02-8274313-3487267-R019346"
# The fixture's refund sits on Amazon order reference S02-8274313-3487267; a capture of ours on that order:
OUR_CAPTURE_ON_THAT_ORDER = "S02-8274313-3487267-C000001"


class CertificateFiles:
    """Serves each fixture certificate at its SigningCertURL (files are named after its last segment)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fetched: list[str] = []

    def __call__(self, url: str) -> CertificateResponse:
        self.fetched.append(url)
        path = self.directory / url.rsplit("/", 1)[-1]
        return (
            CertificateResponse(200, path.read_bytes()) if path.is_file() else CertificateResponse(404, b"")
        )


def load(fixtures_dir: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((fixtures_dir / "sns" / name).read_text(encoding="utf-8"))
    return document


def raw(fixtures_dir: Path, name: str) -> str:
    return (fixtures_dir / "sns" / name).read_text(encoding="utf-8")


def at_message_time(document: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(document["Timestamp"])


def post_fixture(
    endpoint: Endpoint, fixtures_dir: Path, name: str, *, body: str | None = None, now: datetime | None = None
) -> Any:
    document = load(fixtures_dir, name)
    moment = now or at_message_time(document)
    endpoint.install(CertificateFiles(fixtures_dir / "sns"), clock=lambda: moment)
    # The body exactly as stored: the signature covers Message as it decodes from these bytes.
    return endpoint.post(api_event(body or raw(fixtures_dir, name), headers=headers_for(document)))


@pytest.fixture
def amazon_sellers(monkeypatch: pytest.MonkeyPatch, fixtures_dir: Path) -> None:
    """This deployment is the fixtures' sellers, on their topics."""
    refund, order = load(fixtures_dir, REFUND), load(fixtures_dir, ORDER_REFERENCE)
    monkeypatch.setenv("SELLER_IDS", "AOPZVV2STP28T,AQR8184NJXADU")
    monkeypatch.setenv("IPN_TOPIC_ARNS", f"{refund['TopicArn']},{order['TopicArn']}")


def test_the_real_refund_ipn_we_did_not_issue_is_authentic_and_acknowledged_as_unmatched_external(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None, dynamodb: Any
) -> None:
    answer = post_fixture(endpoint, fixtures_dir, REFUND)

    # Its RefundReferenceId is not one of ours and no refund of ours is open on its order: nothing to count.
    assert (answer.status, answer.reason) == (200, "external_refund_unmatched")
    assert table_items(dynamodb) == []


class CaptureListing:
    """GetCaptureDetails of our capture on the fixture's order, listing the fixture's refund."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_refund_details(
        self, amazon_refund_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> RefundDetails:
        raise AssertionError("the IPN carries the refund's details: none is read")

    def get_capture_details(
        self, amazon_capture_id: str, *, seller_id: str | None = None, deadline: float | None = None
    ) -> CaptureDetails:
        self.calls.append(amazon_capture_id)
        return CaptureDetails(
            amazon_capture_id=amazon_capture_id,
            capture_reference_id="cap-1",
            capture_amount=Price(Decimal("10.00"), "NOK"),
            refunded_amount=Price(Decimal("0.33"), "NOK"),
            capture_fee=None,
            capture_status=CaptureStatus("Completed", None, None),
            id_list=(FIXTURE_REFUND_ID,),
            creation_timestamp=datetime(2017, 6, 28, tzinfo=UTC),
            seller_capture_note=None,
            soft_descriptor=None,
            converted_amount=None,
            conversion_rate=None,
        )


def test_the_real_refund_ipn_is_recorded_once_on_our_capture_ledger_when_our_capture_holds_it(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None, store: RefundStore
) -> None:
    create_refund(
        store, "ord-7-r1", amount="5.00", currency_code="NOK", captured="10.00",
        capture_id=OUR_CAPTURE_ON_THAT_ORDER, seller_id="AOPZVV2STP28T",
    )  # fmt: skip
    document = load(fixtures_dir, REFUND)
    moment = at_message_time(document)
    amazon = CaptureListing()
    endpoint.install(CertificateFiles(fixtures_dir / "sns"), clock=lambda: moment, amazon_pay=amazon)
    event = api_event(raw(fixtures_dir, REFUND), headers=headers_for(document))
    first, again = endpoint.post(event), endpoint.post(event)

    assert (first.status, first.reason) == (200, "external_refund_recorded")
    assert (again.status, again.reason) == (200, "external_refund_duplicate")
    assert amazon.calls == [OUR_CAPTURE_ON_THAT_ORDER, OUR_CAPTURE_ON_THAT_ORDER]
    ledger = store.get_ledger(OUR_CAPTURE_ON_THAT_ORDER)
    assert ledger is not None
    assert ledger.external == Decimal("0.33")
    assert [(e.amazon_refund_id, e.refund_type) for e in ledger.external_refunds] == [
        (FIXTURE_REFUND_ID, "SellerInitiated")
    ]
    assert ledger.available == Decimal("10.00") - Decimal("5.00") - Decimal("0.33")


def test_the_real_capture_ipn_is_acknowledged_then_a_duplicate(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None
) -> None:
    first = post_fixture(endpoint, fixtures_dir, CAPTURE)
    again = post_fixture(endpoint, fixtures_dir, CAPTURE)

    assert (first.status, first.reason) == (200, "acknowledged")
    assert (again.status, again.reason) == (200, "duplicate")


def test_the_real_order_reference_sample_ipn_is_acknowledged_without_acting(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None, dynamodb: Any
) -> None:
    answer = post_fixture(endpoint, fixtures_dir, ORDER_REFERENCE)

    assert (answer.status, answer.reason) == (200, "sample_ignored")
    assert table_items(dynamodb) == []


@pytest.mark.parametrize("name", HELLO)
def test_plain_sns_messages_on_topics_outside_this_deployment_are_refused(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None, name: str
) -> None:
    answer = post_fixture(endpoint, fixtures_dir, name)

    assert (answer.status, answer.reason) == (403, "topic_not_allowed")


@pytest.mark.parametrize("name", HELLO)
def test_plain_sns_messages_are_authentic_but_not_amazon_pay_when_no_topics_are_configured(
    endpoint: Endpoint, fixtures_dir: Path, name: str
) -> None:
    # SELLER_IDS only: any topic must then belong to Amazon Pay's IPN account, which these do not.
    answer = post_fixture(endpoint, fixtures_dir, name)

    assert (answer.status, answer.reason) == (403, "topic_not_allowed")


@pytest.mark.parametrize("name", [REFUND, CAPTURE, ORDER_REFERENCE, *HELLO])
def test_every_real_fixture_is_refused_today_because_its_certificate_expired(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None, name: str
) -> None:
    today = datetime.now(UTC)
    # Without the freshness check (as for offline re-verification) the certificate's validity decides.
    verifier = SnsVerifier(
        SnsCertificateTrust(),
        fetcher=CertificateFiles(fixtures_dir / "sns"),
        clock=lambda: today,
        max_age=None,
    )
    endpoint.install_service(
        IpnService(
            authenticity=IpnAuthenticator(
                verifier,
                DeploymentBinding.of(
                    topic_arns=runtime.settings().ipn_topic_arns, seller_ids=runtime.settings().seller_ids
                ),
            ),
            store=runtime.store(),
            amazon_pay=runtime.amazon_pay,
            sandbox=True,
            max_processing_failure_retries=1,
            clock=lambda: today,
        )
    )
    document = load(fixtures_dir, name)
    answer = endpoint.post(api_event(raw(fixtures_dir, name), headers=headers_for(document)))

    assert (answer.status, answer.reason) == (403, "certificate_expired")


def test_real_refund_ipn_is_refused_today_as_stale_before_any_certificate_fetch(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None
) -> None:
    files = CertificateFiles(fixtures_dir / "sns")
    today = datetime.now(UTC)
    endpoint.install(files, clock=lambda: today)
    document = load(fixtures_dir, REFUND)
    answer = endpoint.post(api_event(raw(fixtures_dir, REFUND), headers=headers_for(document)))

    assert (answer.status, answer.reason) == (403, "message_stale")
    assert files.fetched == []


def test_a_tampered_real_refund_ipn_is_refused(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None, dynamodb: Any
) -> None:
    tampered = raw(fixtures_dir, REFUND).replace("<Amount>0.33<", "<Amount>9.33<")
    assert tampered != raw(fixtures_dir, REFUND)

    answer = post_fixture(endpoint, fixtures_dir, REFUND, body=tampered)

    assert (answer.status, answer.reason) == (403, "signature_invalid")
    assert table_items(dynamodb) == []


def test_a_body_that_is_not_json_is_malformed(
    endpoint: Endpoint, fixtures_dir: Path, amazon_sellers: None
) -> None:
    answer = post_fixture(endpoint, fixtures_dir, REFUND, body="Type=Notification&Message=hello")

    assert (answer.status, answer.reason) == (400, "body_not_json")
    assert set(answer.body) == {"status", "reason"}
