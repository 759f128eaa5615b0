"""Hostile posts to `/ipn` with the production trust and the real certificate fetcher (requests, urllib3,
the socket layer): only real AWS commercial regions' SNS hosts are ever looked up; a certificate host that
does not exist or fails TLS is a 403 (not authentic), and only a transient failure is a 5xx. Name
resolution is replaced at `socket.getaddrinfo`, so nothing leaves the machine and every lookup is seen.

And subscription confirmations: only for topics of this deployment's sellers, in the `aws` partition.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from amazon_pay_refunds.adapters.sns import RequestsCertificateFetcher
from tests.support.ipn_signing import (
    NOW,
    OTHER_SELLER,
    SELLER,
    Signer,
    amazon_pay_message,
    api_event,
    refund_notification_xml,
)
from tests.support.sns_forge import make_identity

from .conftest import Endpoint

REFUND_XML = refund_notification_xml(
    amazon_refund_id="S01-1234567-1234567-R000001", refund_reference_id="ord-1-r1_1", state="Completed"
)

# The real transport, taken before moto's mock_aws (which answers requests to *.amazonaws.com itself) starts.
_REAL_SEND = requests.adapters.HTTPAdapter.send


class RealTransport(requests.adapters.HTTPAdapter):
    send = _REAL_SEND


PATH = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
AMAZON_PAY_ACCOUNT = "291180941288"
TOKEN = "2336412f37fb687f5d51e6e2425f004aed7b7526b4e5a4c5e8a1c7c5c4b3a2f1"


@dataclass
class Resolver:
    """Stands in for DNS: records every name looked up and answers as told (default: no such name)."""

    monkeypatch: pytest.MonkeyPatch
    looked_up: list[str] = field(default_factory=list)
    error: int | None = socket.EAI_NONAME
    address: tuple[str, int] | None = None

    def install(self) -> None:
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if name in ("127.0.0.1", "localhost"):
                return real(host, port, *args, **kwargs)
            self.looked_up.append(name)
            if self.address is not None:
                return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", self.address)]
            assert self.error is not None
            raise socket.gaierror(self.error, "test resolver")

        self.monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    resolver = Resolver(monkeypatch)
    resolver.install()
    return resolver


@pytest.fixture
def real_fetcher(endpoint: Endpoint) -> Endpoint:
    session = requests.Session()
    session.mount("https://", RealTransport())
    endpoint.install(RequestsCertificateFetcher(timeout=(2.0, 2.0), deadline_seconds=4.0, session=session))
    return endpoint


def refund_ipn(cert_url: str) -> dict[str, Any]:
    """A refund IPN naming `cert_url`; its signature is an attacker's (it is never reached)."""
    signer = Signer.sns()
    signer.cert_url = cert_url
    return api_event(signer.envelope(amazon_pay_message(REFUND_XML)))


# --- which hosts are looked up at all ------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "sns.zz-nowhere-9.amazonaws.com",
        "sns.us-nowhere-1.amazonaws.com",
        "sns.eu-west-99.amazonaws.com",
        "sns.cn-north-1.amazonaws.com.cn",
        "sns.us-gov-west-1.amazonaws.com",
    ],
)
def test_a_certificate_host_outside_the_commercial_regions_is_403_and_never_looked_up(
    real_fetcher: Endpoint, resolver: Resolver, host: str
) -> None:
    answer = real_fetcher.post(refund_ipn(f"https://{host}{PATH}"))

    assert (answer.status, answer.reason) == (403, "cert_url_host")
    assert resolver.looked_up == []


# --- what a fetch from a listed host may answer ----------------------------------------------------------


@pytest.mark.parametrize("error", [socket.EAI_NONAME, socket.EAI_NODATA])
def test_a_listed_certificate_host_whose_name_does_not_exist_is_403(
    real_fetcher: Endpoint, resolver: Resolver, error: int
) -> None:
    resolver.error = error

    answer = real_fetcher.post(refund_ipn(f"https://sns.eu-west-1.amazonaws.com{PATH}"))

    assert resolver.looked_up == ["sns.eu-west-1.amazonaws.com"]
    assert (answer.status, answer.reason) == (403, "certificate_host_unknown")


@pytest.mark.parametrize("error", [socket.EAI_AGAIN, socket.EAI_FAIL])
def test_a_temporary_name_resolution_failure_is_503_so_that_sns_redelivers(
    real_fetcher: Endpoint, resolver: Resolver, error: int
) -> None:
    resolver.error = error

    answer = real_fetcher.post(refund_ipn(f"https://sns.eu-west-1.amazonaws.com{PATH}"))

    assert resolver.looked_up == ["sns.eu-west-1.amazonaws.com"]
    assert (answer.status, answer.reason) == (503, "certificate_fetch_failed")


def test_a_refused_connection_is_503_so_that_sns_redelivers(
    real_fetcher: Endpoint, resolver: Resolver
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    resolver.address = ("127.0.0.1", port)

    answer = real_fetcher.post(refund_ipn(f"https://sns.eu-west-1.amazonaws.com{PATH}"))

    assert (answer.status, answer.reason) == (503, "certificate_fetch_failed")


@pytest.fixture
def impostor_tls_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for the SNS host: TLS must refuse it."""
    identity = make_identity("sns.eu-west-1.amazonaws.com")
    (tmp_path / "cert.pem").write_bytes(identity.pem)
    (tmp_path / "key.pem").write_bytes(
        identity.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(identity.pem)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_a_listed_certificate_host_failing_tls_verification_is_403(
    real_fetcher: Endpoint, resolver: Resolver, impostor_tls_server: tuple[str, int]
) -> None:
    resolver.address = impostor_tls_server

    answer = real_fetcher.post(refund_ipn(f"https://sns.eu-west-1.amazonaws.com{PATH}"))

    assert resolver.looked_up == ["sns.eu-west-1.amazonaws.com"]
    assert (answer.status, answer.reason) == (403, "certificate_tls_failed")


# --- subscription confirmations: only our sellers' topics, only the aws partition ---------------------------


def topic(seller: str, *, partition: str = "aws", region: str = "us-east-1") -> str:
    return f"arn:{partition}:sns:{region}:{AMAZON_PAY_ACCOUNT}:A3BXB0YN3XH17H{seller}"


def confirmation(signer: Signer, topic_arn: str, host: str = "sns.us-east-1.amazonaws.com") -> dict[str, Any]:
    url = f"https://{host}/?Action=ConfirmSubscription&TopicArn={quote(topic_arn, safe='')}&Token={TOKEN}"
    document = signer.envelope(
        f"You have chosen to subscribe to the topic {topic_arn}.",
        topic=topic_arn,
        message_type="SubscriptionConfirmation",
        subscribe_url=url,
        token=TOKEN,
        timestamp=NOW - timedelta(seconds=5),
    )
    return api_event(document)


@pytest.fixture
def signer(endpoint: Endpoint) -> Signer:
    """No IPN_TOPIC_ARNS: topics are accepted by Amazon Pay's account and this deployment's sellers."""
    signer = Signer.sns()
    endpoint.install(signer.fetch)
    return signer


@pytest.mark.parametrize("seller", [SELLER, OTHER_SELLER])
def test_a_confirmation_for_a_topic_of_one_of_our_sellers_is_confirmed(
    endpoint: Endpoint, signer: Signer, seller: str
) -> None:
    answer = endpoint.post(confirmation(signer, topic(seller)))

    assert (answer.status, answer.reason) == (200, "subscription_confirmed")
    assert len(endpoint.subscribe.urls) == 1


@pytest.mark.parametrize(
    "topic_arn",
    [
        topic("A3ANOTHERMERCHANT"),  # another merchant's topic in Amazon Pay's account
        topic(SELLER + "X"),  # our seller id followed by more: another seller
        f"arn:aws:sns:us-east-1:{AMAZON_PAY_ACCOUNT}:{SELLER}",  # no marketplace prefix
        f"arn:aws:sns:us-east-1:{AMAZON_PAY_ACCOUNT}:anything-{SELLER}",  # not Amazon Pay's naming
        topic(SELLER, partition="aws-cn", region="cn-north-1"),
        topic(SELLER, partition="aws-us-gov", region="us-gov-west-1"),
        f"arn:aws:sns:us-east-1:123456789012:A3BXB0YN3XH17H{SELLER}",  # someone's own account
    ],
)
def test_a_confirmation_for_a_topic_that_is_not_one_of_our_sellers_is_refused_and_never_fetched(
    endpoint: Endpoint, signer: Signer, topic_arn: str
) -> None:
    answer = endpoint.post(confirmation(signer, topic_arn))

    assert (answer.status, answer.reason) == (403, "topic_not_allowed")
    assert endpoint.subscribe.urls == []


def test_a_notification_for_our_seller_on_another_merchants_topic_is_refused(
    endpoint: Endpoint, signer: Signer
) -> None:
    document = signer.envelope(amazon_pay_message(REFUND_XML), topic=topic("A3ANOTHERMERCHANT"))

    answer = endpoint.post(api_event(document))

    assert (answer.status, answer.reason) == (403, "topic_not_allowed")
