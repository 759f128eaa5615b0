"""Receives what the simulator posts (IPNs): an HTTP server on 127.0.0.1, for tests and benches."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from amazon_pay_refunds.adapters.mws.models import RefundDetails
from amazon_pay_refunds.adapters.mws.parse import refund_details_from_xml


@dataclass(frozen=True)
class Posted:
    """One POST as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def envelope(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def message(self) -> dict[str, Any]:
        return json.loads(self.envelope["Message"])  # type: ignore[no-any-return]

    @property
    def details(self) -> RefundDetails:
        return refund_details_from_xml(self.message["NotificationData"])

    @property
    def state(self) -> str:
        return self.details.refund_status.state


class IpnReceiver:
    """Captures every POST; answers the queued statuses first, then `default_status`."""

    def __init__(self, default_status: int = 200) -> None:
        self.default_status = default_status
        self.statuses: deque[int] = deque()
        self.posts: list[Posted] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver.statuses.popleft() if receiver.statuses else receiver.default_status
                    receiver.posts.append(Posted(self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/ipn"

    def take(self) -> list[Posted]:
        """The posts received so far, forgotten here."""
        with self._lock:
            taken, self.posts = self.posts, []
        return taken

    def answer(self, *statuses: int) -> None:
        with self._lock:
            self.statuses.extend(statuses)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
