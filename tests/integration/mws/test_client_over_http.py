"""The Amazon Pay client against a real HTTP server on 127.0.0.1 (the Host it signs is the one it sends)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from amazon_pay_refunds.adapters.mws import signing
from amazon_pay_refunds.adapters.mws.client import AmazonPayClient
from amazon_pay_refunds.adapters.mws.credentials import SellerCredentials
from amazon_pay_refunds.adapters.mws.endpoints import Endpoint

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY"
CREDENTIALS = SellerCredentials("A1SELLER", "AKIAEXAMPLE", SECRET_KEY, "amzn.mws.4ea38b7b+f563/7709-TOKEN")
CAPTURE_ID = "S01-1234567-1234567-C000001"
SIGNATURE_REFUSED = (
    b'<ErrorResponse xmlns="http://mws.amazonservices.com/schema/OffAmazonPayments/2013-01-01">'
    b"<Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>nope</Message></Error>"
    b"<RequestId>rid-SignatureDoesNotMatch</RequestId></ErrorResponse>"
)


@pytest.fixture
def refund_ok(fixtures_dir: Path) -> bytes:
    return (fixtures_dir / "mws" / "RefundResponse.xml").read_bytes()


class _VerifyingHandler(BaseHTTPRequestHandler):
    """A server that checks the signature against the Host header it received, as the simulator does."""

    reply: bytes = b""
    hosts: list[str] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        host = self.headers["Host"]
        self.hosts.append(host)
        ok = signing.verify(
            SECRET_KEY, "POST", host, urlsplit(self.path).path, form, form.get("Signature", "")
        )
        body = self.reply if ok else SIGNATURE_REFUSED
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def verifying_server(refund_ok: bytes) -> Iterator[tuple[int, list[str]]]:
    hosts: list[str] = []
    handler = type("Handler", (_VerifyingHandler,), {"reply": refund_ok, "hosts": hosts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_non_default_port_is_part_of_the_host_the_server_verifies(
    verifying_server: tuple[int, list[str]],
) -> None:
    port, hosts = verifying_server
    endpoint = Endpoint("http", f"127.0.0.1:{port}", "/OffAmazonPayments_Sandbox/2013-01-01")
    client = AmazonPayClient(CREDENTIALS, endpoint, timeout=(2.0, 5.0), max_attempts=1)
    details = client.refund(CAPTURE_ID, "r_1", Decimal("0.50"), "USD")
    assert details.amazon_refund_id == "S01-5695290-1354077-R072290"
    assert hosts == [f"127.0.0.1:{port}"]
