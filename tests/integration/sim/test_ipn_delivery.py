"""The simulator posts SNS-signed Amazon Pay refund IPNs over real HTTP, and redelivers them like SNS."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from amazon_pay_refunds.adapters.sns import NotAuthentic, Reason, SnsCertificateTrust, SnsVerifier
from amazon_pay_refunds.adapters.sns.certificates import CertificateResponse
from amazon_pay_sim.receiver import IpnReceiver, Posted
from tests.support.paths import FIXTURES
from tests.support.sim import refund_params
from tests.support.sim_client import SimClient
from tests.support.sim_ipn import local_verifier, verify_posted

FIXTURE = FIXTURES / "sns" / "amazon-pay-refund-completed-eu-2017.json"
SELLER = "A1LOCALSELLER"
REJECTED = '{"SandboxSimulation": {"State":"Declined", "ReasonCode":"AmazonRejected"}}'


def refund(served: SimClient, reference: str = "r1", amount: str = "10.00", **extra: str) -> str:
    answer = served.mws("Refund", refund_params(served.capture(), reference, amount, **extra))
    assert answer.status == 200, answer.body
    return str(answer.field("AmazonRefundId"))


def settle(served: SimClient) -> None:
    assert served.control("POST", "/settle", {"all": True}).status_code == 200


def idle(served: SimClient) -> None:
    served.handle.simulator.wait_for_ipn_idle(10)


def deliveries(served: SimClient) -> list[dict[str, object]]:
    response = served.control("GET", "/ipn/deliveries")
    assert response.status_code == 200
    return list(response.json()["deliveries"])


def wait_for_posts(receiver: IpnReceiver, count: int, timeout: float = 5) -> list[Posted]:
    deadline = time.monotonic() + timeout
    while len(receiver.posts) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(receiver.posts)


# -- what is posted --


def test_creation_and_settlement_each_post_one_ipn_in_order(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    refund_id = refund(ipn_served)
    settle(ipn_served)
    idle(ipn_served)
    assert [(p.details.amazon_refund_id, p.state) for p in receiver.posts] == [
        (refund_id, "Pending"),
        (refund_id, "Completed"),
    ]
    assert [(d["state"], d["outcome"], d["status"], d["attempts"]) for d in deliveries(ipn_served)] == [
        ("Pending", "delivered", 200, 1),
        ("Completed", "delivered", 200, 1),
    ]


@pytest.mark.parametrize("version", ["1", "2"])
def test_each_posted_ipn_verifies_with_the_simulators_authority(
    ipn_served: SimClient, receiver: IpnReceiver, version: str
) -> None:
    sim = ipn_served.handle.simulator
    sim.set_ipn_options(signature_version=version)
    refund(ipn_served)
    settle(ipn_served)
    idle(ipn_served)
    verifier = local_verifier(sim)  # fetches the certificate from the simulator over HTTP
    verified = [verify_posted(posted, verifier) for posted in receiver.posts]
    assert [v.sns.signature_version for v in verified] == [version, version]
    assert all(v.notification is not None and v.notification.seller_id == SELLER for v in verified)
    assert len(verified) == 2


def test_signature_versions_alternate_by_default(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    refund(ipn_served)
    settle(ipn_served)
    idle(ipn_served)
    verifier = local_verifier(ipn_served.handle.simulator)
    assert [verify_posted(p, verifier).sns.signature_version for p in receiver.posts] == ["1", "2"]


def test_a_signature_only_verifies_under_its_own_hash(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    refund(ipn_served)
    idle(ipn_served)
    (posted,) = receiver.posts
    envelope = posted.envelope
    assert envelope["SignatureVersion"] == "1"
    envelope["SignatureVersion"] = "2"
    forged = Posted(posted.path, posted.headers, json.dumps(envelope).encode(), posted.answered)
    with pytest.raises(NotAuthentic) as refused:
        verify_posted(forged, local_verifier(ipn_served.handle.simulator))
    assert refused.value.reason is Reason.SIGNATURE_INVALID


def test_an_ipn_has_the_shape_of_amazons_real_refund_ipn(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    real = json.loads(FIXTURE.read_text())
    refund(ipn_served)
    idle(ipn_served)
    (posted,) = receiver.posts
    assert list(posted.envelope) == list(real)
    assert list(posted.message) == list(json.loads(real["Message"]))
    headers = {name.lower(): value for name, value in posted.headers.items()}
    envelope = posted.envelope
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-message-id"] == envelope["MessageId"]
    assert headers["x-amz-sns-topic-arn"] == envelope["TopicArn"]
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert re.fullmatch(r"arn:aws:sns:us-east-1:291180941288:A3BXB0YN3XH17H" + SELLER, envelope["TopicArn"])
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", envelope["MessageId"]
    )
    message = posted.message
    assert (message["NotificationType"], message["ReleaseEnvironment"], message["Version"]) == (
        "PaymentRefund",
        "Sandbox",
        "2013-01-01",
    )
    assert message["NotificationData"].startswith(
        '<?xml version="1.0" encoding="UTF-8"?><RefundNotification '
        'xmlns="https://mws.amazonservices.com/ipn/OffAmazonPayments/2013-01-01"><RefundDetails>'
    )
    # Amazon's escaping, exactly as the signed Message string carries it.
    assert "<\\/AmazonRefundId>" in envelope["Message"]
    assert envelope["SigningCertURL"] == ipn_served.handle.simulator.signing_certificate_url
    assert envelope["UnsubscribeURL"].startswith(
        f"{ipn_served.handle.url}/?Action=Unsubscribe&SubscriptionArn="
    )


def test_notification_data_carries_the_refunds_current_details(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    refund_id = refund(ipn_served, "ord-1-r1", "12.34", SoftDescriptor="Returns")
    settle(ipn_served)
    idle(ipn_served)
    view = ipn_served.control("GET", f"/refunds/{refund_id}").json()
    pending, completed = (p.details for p in receiver.posts)
    for details in (pending, completed):
        assert details.amazon_refund_id == refund_id
        assert details.refund_reference_id == "ord-1-r1"
        assert (str(details.refund_amount.amount), details.refund_amount.currency_code) == ("12.34", "USD")
        assert details.refund_type == "SellerInitiated"
        assert details.soft_descriptor == "AMZ*Returns"
    assert (pending.refund_status.state, completed.refund_status.state) == ("Pending", view["state"])
    assert completed.refund_status.last_update_timestamp is not None
    assert completed.refund_status.last_update_timestamp.isoformat().startswith(view["updated_at"][:19])


def test_a_declined_ipn_carries_the_reason_code(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    refund(ipn_served, SellerRefundNote=REJECTED)
    settle(ipn_served)
    idle(ipn_served)
    verified = verify_posted(receiver.posts[-1], local_verifier(ipn_served.handle.simulator))
    assert verified.notification is not None
    from amazon_pay_refunds.adapters.mws.parse import refund_details_from_xml

    status = refund_details_from_xml(verified.notification.notification_data).refund_status
    assert (status.state, status.reason_code) == ("Declined", "AmazonRejected")
    assert status.reason_description


@pytest.mark.parametrize("refund_type", ["AmazonA-ZRefund", "BuyerCanceled", "SellerInitiated"])
def test_an_external_refund_posts_a_completed_ipn(
    ipn_served: SimClient, receiver: IpnReceiver, refund_type: str
) -> None:
    capture_id = ipn_served.capture()
    response = ipn_served.control(
        "POST", f"/captures/{capture_id}/external-refund", {"amount": "5.00", "refund_type": refund_type}
    )
    assert response.status_code == 201
    idle(ipn_served)
    (posted,) = receiver.posts
    verify_posted(posted, local_verifier(ipn_served.handle.simulator))
    assert (posted.details.refund_type, posted.state, posted.details.amazon_refund_id) == (
        refund_type,
        "Completed",
        response.json()["amazon_refund_id"],
    )


def test_an_ipn_for_another_seller_names_that_seller(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    ipn_served.handle.simulator.add_seller("A2OTHERSELLER", "OTHERKEY", "other-secret")
    capture_id = ipn_served.capture(seller_id="A2OTHERSELLER")
    ipn_served.control(
        "POST", f"/captures/{capture_id}/external-refund", {"amount": "1.00", "refund_type": "BuyerCanceled"}
    )
    idle(ipn_served)
    (posted,) = receiver.posts
    verifier = local_verifier(ipn_served.handle.simulator)
    assert verify_posted(posted, verifier, seller_id="A2OTHERSELLER").notification is not None
    assert posted.envelope["TopicArn"].endswith(":A3BXB0YN3XH17HA2OTHERSELLER")
    with pytest.raises(NotAuthentic) as refused:
        verify_posted(posted, verifier, seller_id=SELLER)
    assert refused.value.reason is Reason.TOPIC_NOT_ALLOWED  # its topic is that seller's, not one of ours


# -- tampering and trust --


def _tampered(posted: Posted, **changes: str) -> Posted:
    envelope = posted.envelope
    envelope.update(changes)
    return Posted(posted.path, posted.headers, json.dumps(envelope).encode(), posted.answered)


def test_a_tampered_ipn_fails_verification(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    refund(ipn_served, amount="10.00")
    idle(ipn_served)
    (posted,) = receiver.posts
    verifier = local_verifier(ipn_served.handle.simulator)
    verify_posted(posted, verifier)  # the untouched one passes
    raw = posted.envelope["Message"]
    message_id = posted.envelope["MessageId"]
    assert "<Amount>10.00<\\/Amount>" in raw
    cases = {
        "amount": _tampered(posted, Message=raw.replace("<Amount>10.00<", "<Amount>99.00<")),
        "state": _tampered(posted, Message=raw.replace("<State>Pending<", "<State>Completed<")),
        # A last character that differs from the real one (a fixed "0" would not, 1 time in 16).
        "message id": _tampered(
            posted, MessageId=posted.envelope["MessageId"][:-1] + ("1" if message_id.endswith("0") else "0")
        ),
    }
    for name, forged in cases.items():
        with pytest.raises(NotAuthentic) as refused:
            verify_posted(forged, verifier, headers=False)
        assert refused.value.reason is Reason.SIGNATURE_INVALID, name


def test_a_changed_topic_header_fails_verification(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    refund(ipn_served)
    idle(ipn_served)
    (posted,) = receiver.posts
    headers = {**posted.headers, "x-amz-sns-topic-arn": "arn:aws:sns:us-east-1:291180941288:AOTHER"}
    with pytest.raises(NotAuthentic) as refused:
        verify_posted(
            Posted(posted.path, headers, posted.body, 200), local_verifier(ipn_served.handle.simulator)
        )
    assert refused.value.reason is Reason.HEADER_MISMATCH


def test_the_production_trust_refuses_the_simulators_ipns(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    refund(ipn_served)
    idle(ipn_served)
    (posted,) = receiver.posts
    fetched: list[str] = []

    def fetcher(url: str) -> CertificateResponse:
        fetched.append(url)
        return CertificateResponse(
            200, ipn_served.handle.simulator.authority.signing_certificate_pem.encode()
        )

    production = SnsVerifier(SnsCertificateTrust(), fetcher=fetcher)
    with pytest.raises(NotAuthentic) as refused:
        verify_posted(posted, production)
    assert refused.value.reason is Reason.CERT_URL_SCHEME  # http://127.0.0.1:…
    # Even on https, the simulator is no SNS host (the signature no longer matters: refused before any fetch).
    name = ipn_served.handle.simulator.certificate_name
    for url, reason in [
        (f"https://localhost/{name}", Reason.CERT_URL_HOST),
        (f"https://127.0.0.1:{ipn_served.handle.port}/{name}", Reason.CERT_URL_PORT),
    ]:
        with pytest.raises(NotAuthentic) as refused:
            verify_posted(_tampered(posted, SigningCertURL=url), production, headers=False)
        assert refused.value.reason is reason
    assert fetched == []


def test_the_signing_certificate_is_refused_by_another_authority(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    from amazon_pay_refunds.adapters.sns import LocalAuthorityTrust
    from amazon_pay_sim.authority import LocalAuthority

    refund(ipn_served)
    idle(ipn_served)
    stranger = LocalAuthority.create()
    verifier = SnsVerifier(
        LocalAuthorityTrust(stranger.ca_certificate_pem, ipn_served.handle.simulator.certificate_url_prefix)
    )
    with pytest.raises(NotAuthentic) as refused:
        verify_posted(receiver.posts[0], verifier)
    assert refused.value.reason is Reason.CERTIFICATE_UNTRUSTED


# -- delivery like SNS --


def test_a_500_answer_is_redelivered_until_accepted(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    receiver.answer(500, 503)
    refund(ipn_served)
    idle(ipn_served)
    assert [p.answered for p in receiver.posts] == [500, 503, 200]
    assert len({p.body for p in receiver.posts}) == 1  # the same signed message each time
    (delivery,) = deliveries(ipn_served)
    assert (delivery["outcome"], delivery["status"], delivery["attempts"]) == ("delivered", 200, 3)
    verify_posted(receiver.posts[-1], local_verifier(ipn_served.handle.simulator))


def test_redelivery_gives_up_after_the_configured_attempts(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    receiver.default_status = 500
    assert ipn_served.control("POST", "/ipn", {"max_attempts": 3}).json()["max_attempts"] == 3
    refund(ipn_served)
    idle(ipn_served)
    assert [p.answered for p in receiver.posts] == [500, 500, 500]
    (delivery,) = deliveries(ipn_served)
    assert (delivery["outcome"], delivery["status"], delivery["attempts"]) == ("failed", 500, 3)


def test_a_connection_error_is_retried_then_given_up(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    closed = IpnReceiver()
    url = closed.url
    closed.close()  # nothing listens there any more
    ipn_served.control("POST", "/ipn", {"url": url, "max_attempts": 2})
    refund(ipn_served)
    idle(ipn_served)
    (delivery,) = deliveries(ipn_served)
    assert (delivery["outcome"], delivery["status"], delivery["attempts"]) == ("failed", None, 2)
    assert delivery["error"]


def test_a_refunds_ipns_stay_in_order_while_one_is_redelivered(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    receiver.answer(500, 500)
    refund(ipn_served)
    settle(ipn_served)
    idle(ipn_served)
    assert [(p.state, p.answered) for p in receiver.posts] == [
        ("Pending", 500),
        ("Pending", 500),
        ("Pending", 200),
        ("Completed", 200),
    ]


def test_posting_happens_off_the_simulator_lock(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    # The receiver fails slowly; MWS calls must not wait for it.
    receiver.default_status = 500
    ipn_served.control("POST", "/ipn", {"max_attempts": 4, "retry_delay_seconds": 0.3})
    started = time.monotonic()
    refund(ipn_served, "r1")
    answer = ipn_served.mws("GetServiceStatus")
    assert answer.status == 200
    assert time.monotonic() - started < 0.5
    assert deliveries(ipn_served)[0]["outcome"] == "pending"
    idle(ipn_served)


# -- IPN faults --


def test_a_drop_fault_loses_the_next_ipn(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    assert ipn_served.control("POST", "/ipn/faults", {"fault": "drop", "count": 1}).status_code == 201
    refund(ipn_served)
    settle(ipn_served)
    idle(ipn_served)
    assert [p.state for p in receiver.posts] == ["Completed"]
    assert [(d["state"], d["outcome"], d["attempts"]) for d in deliveries(ipn_served)] == [
        ("Pending", "dropped", 0),
        ("Completed", "delivered", 1),
    ]


def test_a_duplicate_fault_delivers_the_same_message_twice(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    ipn_served.control("POST", "/ipn/faults", {"fault": "duplicate", "count": 1})
    refund(ipn_served)
    settle(ipn_served)
    idle(ipn_served)
    assert [p.state for p in receiver.posts] == ["Pending", "Pending", "Completed"]
    first, second, _ = receiver.posts
    assert first.body == second.body
    verifier = local_verifier(ipn_served.handle.simulator)
    assert verify_posted(first, verifier).sns.message_id == verify_posted(second, verifier).sns.message_id
    logged = deliveries(ipn_served)
    assert [d["duplicate"] for d in logged] == [False, True, False]
    assert logged[0]["message_id"] == logged[1]["message_id"]


def test_a_delay_fault_lets_later_ipns_overtake(ipn_served: SimClient, receiver: IpnReceiver) -> None:
    ipn_served.control("POST", "/ipn/faults", {"fault": "delay", "count": 1, "seconds": 0.5})
    refund(ipn_served)
    settle(ipn_served)
    posts = wait_for_posts(receiver, 1)
    assert [p.state for p in posts] == ["Completed"]
    idle(ipn_served)
    assert [p.state for p in receiver.posts] == ["Completed", "Pending"]
    assert deliveries(ipn_served)[0]["fault"] == "delay"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"fault": "explode"}, "InvalidFault"),
        ({"fault": "drop", "count": 0}, "InvalidCount"),
        ({"fault": "delay"}, "MissingField"),
        ({"fault": "delay", "seconds": -1}, "InvalidSeconds"),
        ({"count": 1}, "MissingField"),
        ({"fault": "drop", "colour": "red"}, "UnknownField"),
    ],
)
def test_bad_ipn_fault_input_gets_a_clear_400(
    ipn_served: SimClient, body: dict[str, object], code: str
) -> None:
    response = ipn_served.control("POST", "/ipn/faults", body)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


# -- control API and certificates over HTTP --


def test_the_ipn_url_can_be_set_over_the_control_api(served: SimClient, receiver: IpnReceiver) -> None:
    refund(served, "before")  # no URL yet: nothing posted, nothing logged
    response = served.control("POST", "/ipn", {"url": receiver.url, "signature_version": "2"})
    assert response.status_code == 200
    assert (response.json()["url"], response.json()["signature_version"]) == (receiver.url, "2")
    refund(served, "after")
    idle(served)
    assert [p.details.refund_reference_id for p in receiver.posts] == ["after"]
    assert served.control("GET", "/ipn").json()["url"] == receiver.url
    served.control("POST", "/ipn", {"url": None})
    refund(served, "stopped")
    idle(served)
    assert len(receiver.posts) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://127.0.0.1/ipn"}, "InvalidUrl"),
        ({"url": 5}, "InvalidField"),
        ({"signature_version": "3"}, "InvalidSignatureVersion"),
        ({"max_attempts": 0}, "InvalidIpnOption"),
        ({"retry_delay_seconds": -1}, "InvalidIpnOption"),
        ({"colour": "red"}, "UnknownField"),
    ],
)
def test_bad_ipn_settings_get_a_clear_400(served: SimClient, body: dict[str, object], code: str) -> None:
    response = served.control("POST", "/ipn", body)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


def test_the_ca_and_the_signing_certificate_are_served(ipn_served: SimClient) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    sim = ipn_served.handle.simulator
    ca_pem = requests.get(f"{ipn_served.handle.url}/simulator/ca.pem", timeout=5)
    assert (ca_pem.status_code, ca_pem.text) == (200, sim.ca_certificate_pem)
    assert sim.certificate_url_prefix == ipn_served.handle.url + "/"
    assert re.fullmatch(r"SimpleNotificationService-[0-9a-f]{32}\.pem", sim.certificate_name)
    signing = requests.get(sim.signing_certificate_url, timeout=5)
    assert signing.status_code == 200
    certificate = x509.load_pem_x509_certificate(signing.content)
    ca = x509.load_pem_x509_certificate(ca_pem.content)
    certificate.verify_directly_issued_by(ca)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "sns.amazonaws.com"
    missing = requests.get(
        f"{ipn_served.handle.url}/SimpleNotificationService-0123456789abcdef.pem", timeout=5
    )
    assert missing.status_code == 404


def test_reset_forgets_the_delivery_log_but_keeps_the_url(
    ipn_served: SimClient, receiver: IpnReceiver
) -> None:
    refund(ipn_served)
    idle(ipn_served)
    assert ipn_served.control("POST", "/reset").status_code == 200
    assert deliveries(ipn_served) == []
    refund(ipn_served)
    idle(ipn_served)
    assert len(deliveries(ipn_served)) == 1
