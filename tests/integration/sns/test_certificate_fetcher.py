"""The default certificate fetcher against a real HTTP server on 127.0.0.1: redirects, size cap, timeouts."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from amazon_pay_refunds.adapters.sns import CertificateResponse, CertificateUnavailable, Reason
from amazon_pay_refunds.adapters.sns.certificates import RequestsCertificateFetcher


class _Handler(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        if self.path == "/redirect.pem":
            self.send_response(301)
            self.send_header("Location", "/target.pem")
            self.end_headers()
        elif self.path == "/huge.pem":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"A" * 65536)
            except OSError:
                pass
        elif self.path == "/slow.pem":
            time.sleep(1.0)
            self.send_response(200)
            self.end_headers()
        else:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"certificate bytes")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    _Handler.paths = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_default_fetcher_does_not_follow_redirects(local_server: str) -> None:
    response = RequestsCertificateFetcher()(f"{local_server}/redirect.pem")

    assert response.status == 301
    assert _Handler.paths == ["/redirect.pem"]


def test_the_default_fetcher_stops_reading_past_its_size_cap(local_server: str) -> None:
    response = RequestsCertificateFetcher(max_bytes=10_000)(f"{local_server}/huge.pem")

    assert 10_000 < len(response.body) < 200_000


def test_the_default_fetcher_returns_the_body(local_server: str) -> None:
    assert RequestsCertificateFetcher()(f"{local_server}/ok.pem") == CertificateResponse(
        200, b"certificate bytes"
    )


def test_the_default_fetcher_times_out_as_unavailable(local_server: str) -> None:
    with pytest.raises(CertificateUnavailable):
        RequestsCertificateFetcher(timeout=(0.5, 0.2))(f"{local_server}/slow.pem")


def test_an_unreachable_certificate_host_is_unavailable() -> None:
    with pytest.raises(CertificateUnavailable) as unavailable:
        RequestsCertificateFetcher(timeout=(0.5, 0.5))("http://127.0.0.1:9/nothing.pem")

    assert unavailable.value.reason is Reason.CERTIFICATE_FETCH_FAILED
