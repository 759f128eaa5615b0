"""HTTP(S) shell of the simulator: the MWS endpoint, the API v2 endpoint (/v2, /sandbox/v2), the JSON control
API under /simulator, and the CLI."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from .ipn import IPN_REGIONS, SIGNATURE_VERSIONS, RetryPolicy
from .simulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SELLER_ID,
    DEFAULT_SETTLE_SECONDS,
    MWS_PATH,
    ControlError,
    Simulator,
)
from .tls import TlsIdentity, self_signed

DEFAULT_PORT = 8701
MAX_BODY_BYTES = 1 << 20
TICK_SECONDS = 0.25

_CAPTURE = re.compile(r"^/simulator/captures/([^/]+)$")
_CAPTURE_ACTION = re.compile(r"^/simulator/captures/([^/]+)/(external-refund|close)$")
_REFUND = re.compile(r"^/simulator/refunds/([^/]+)$")
_CHARGE = re.compile(r"^/simulator/charges/([^/]+)$")
_CHARGE_REFUND = re.compile(r"^/simulator/charges/([^/]+)/external-refund$")
_CHARGE_CHARGEBACK = re.compile(r"^/simulator/charges/([^/]+)/chargeback$")
_V2_API = re.compile(r"^(?:/sandbox|/live)?/v2(?:/|$)")
CA_PATH = "/simulator/ca.pem"
TLS_CERTIFICATE_PATH = "/simulator/tls.pem"
PEM_CONTENT_TYPE = "application/x-x509-ca-cert"

Json = dict[str, Any]


class ServerHandle:
    """A running simulator server: where it listens, and how to stop it."""

    def __init__(
        self,
        simulator: Simulator,
        httpd: ThreadingHTTPServer,
        stopping: threading.Event,
        tls: TlsIdentity | None = None,
    ) -> None:
        self.simulator = simulator
        self.tls_certificate_pem = tls.certificate_pem if tls is not None else None
        self._httpd = httpd
        self._stopping = stopping
        address = httpd.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._threads = [
            threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True),
            threading.Thread(target=self._tick, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def url(self) -> str:
        scheme = "http" if self.tls_certificate_pem is None else "https"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def mws_url(self) -> str:
        return f"{self.url}{MWS_PATH}"

    def _tick(self) -> None:
        # Settle due refunds in real time too, so that observers (IPNs) fire without anyone polling.
        while not self._stopping.wait(TICK_SECONDS):
            self.simulator.settle()

    def shutdown(self) -> None:
        self._stopping.set()  # releases held ("timeout") connections at once
        self.simulator.detach_base_url()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def wait(self) -> None:
        self._stopping.wait()


def serve(
    simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0, tls: TlsIdentity | bool = False
) -> ServerHandle:
    """Serve HTTP, or HTTPS with ``tls`` (True: a fresh self-signed certificate, see tls.py)."""
    stopping = threading.Event()
    identity = self_signed() if tls is True else (tls or None)
    handler = type(
        "SimulatorHandler",
        (_Handler,),
        {
            "simulator": simulator,
            "stopping": stopping,
            "tls_certificate_pem": identity and identity.certificate_pem,
        },
    )
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    if identity is not None:
        # The handshake happens in the request's thread, so a silent client cannot stall the server.
        httpd.socket = identity.server_context().wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
    handle = ServerHandle(simulator, httpd, stopping, identity)
    simulator.attach_base_url(handle.url)
    return handle


class _Handler(BaseHTTPRequestHandler):
    simulator: Simulator
    stopping: threading.Event
    tls_certificate_pem: str | None
    protocol_version = "HTTP/1.1"
    server_version = "amazon-pay-sim"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the call log (/simulator/calls) is the record."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(
                413, "application/json", json.dumps({"error": {"code": "TooLarge", "message": "body"}})
            )
            return
        body = self.rfile.read(length) if length else b""
        if method == "GET" and path == CA_PATH:
            self._send(200, PEM_CONTENT_TYPE, self.simulator.ca_certificate_pem)
            return
        if method == "GET" and path == "/" + self.simulator.certificate_name:
            self._send(200, PEM_CONTENT_TYPE, self.simulator.authority.signing_certificate_pem)
            return
        if method == "GET" and path == TLS_CERTIFICATE_PATH and self.tls_certificate_pem is not None:
            self._send(200, PEM_CONTENT_TYPE, self.tls_certificate_pem)
            return
        if path == "/simulator" or path.startswith("/simulator/"):
            self._control(method, path, body)
            return
        if _V2_API.match(path):
            v2 = self.simulator.handle_v2(method, path, query, dict(self.headers.items()), body)
            if v2.hold_seconds is not None:
                self.stopping.wait(v2.hold_seconds)
                self.close_connection = True  # drop the connection: the answer never arrives
                return
            self._send(v2.status, "application/json", v2.body, {"x-amz-pay-request-id": v2.request_id})
            return
        answer = self.simulator.handle_mws(method, self.headers.get("Host", ""), path, body)
        if answer.hold_seconds is not None:
            self.stopping.wait(answer.hold_seconds)
            self.close_connection = True  # drop the connection: the answer never arrives
            return
        self._send(answer.status, "text/xml", answer.body)

    def _send(self, status: int, content_type: str, text: str, headers: dict[str, str] | None = None) -> None:
        payload = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _control(self, method: str, path: str, body: bytes) -> None:
        try:
            status, result = _route(self.simulator, method, path, _json_body(body))
        except ControlError as error:
            status, result = error.http_status, {"error": {"code": error.code, "message": error.message}}
        self._send(status, "application/json", json.dumps(result))


def _json_body(body: bytes) -> Json:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise ControlError(400, "InvalidJson", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ControlError(400, "InvalidJson", "the body must be a JSON object")
    return value


def _fields(body: Json, required: Sequence[str], optional: Sequence[str] = ()) -> Json:
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise ControlError(400, "UnknownField", f"unknown field(s): {', '.join(unknown)}")
    missing = [name for name in required if name not in body]
    if missing:
        raise ControlError(400, "MissingField", f"missing field(s): {', '.join(missing)}")
    return body


def _optional_str(body: Json, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ControlError(400, "InvalidField", f"{name} must be a string")
    return value


def _route(sim: Simulator, method: str, path: str, body: Json) -> tuple[int, Any]:
    routes: dict[tuple[str, str], Callable[[], tuple[int, Any]]] = {
        ("POST", "/simulator/captures"): lambda: _create_capture(sim, body),
        ("POST", "/simulator/charges"): lambda: _create_charge(sim, body),
        ("POST", "/simulator/faults"): lambda: _add_fault(sim, body),
        ("POST", "/simulator/settle"): lambda: _settle(sim, body),
        ("POST", "/simulator/clock/advance"): lambda: _advance(sim, body),
        ("GET", "/simulator/calls"): lambda: (200, {"calls": sim.calls()}),
        ("GET", "/simulator/v2/calls"): lambda: (200, {"calls": sim.pay_v2.calls()}),
        ("POST", "/simulator/reset"): lambda: _reset(sim, body),
        ("POST", "/simulator/throttling"): lambda: _throttling(sim, body),
        ("GET", "/simulator/ipn"): lambda: (200, sim.ipn_settings()),
        ("POST", "/simulator/ipn"): lambda: _configure_ipn(sim, body),
        ("GET", "/simulator/ipn/deliveries"): lambda: (200, {"deliveries": sim.ipn_deliveries()}),
        ("POST", "/simulator/ipn/faults"): lambda: _add_ipn_fault(sim, body),
    }
    if (method, path) in routes:
        return routes[(method, path)]()
    if method == "GET" and (match := _CAPTURE.fullmatch(path)):
        return 200, sim.capture_view(match.group(1))
    if method == "GET" and (match := _REFUND.fullmatch(path)):
        return 200, sim.refund_view(match.group(1))
    if method == "GET" and (match := _CHARGE.fullmatch(path)):
        return 200, sim.charge_view(match.group(1))
    if method == "POST" and (match := _CHARGE_REFUND.fullmatch(path)):
        fields = _fields(body, ("amount",), ("state", "decline_reason"))
        state = _optional_str(fields, "state") or "Refunded"
        decline = _optional_str(fields, "decline_reason")
        return 201, sim.charge_external_refund(
            match.group(1), fields["amount"], state=state, decline_reason=decline
        )
    if method == "POST" and (match := _CHARGE_CHARGEBACK.fullmatch(path)):
        fields = _fields(body, (), ("amount",))
        return 201, sim.charge_chargeback(match.group(1), fields.get("amount"))
    if method == "POST" and (match := _CAPTURE_ACTION.fullmatch(path)):
        capture_id, action = match.groups()
        if action == "close":
            _fields(body, ())
            return 200, sim.close_capture(capture_id)
        fields = _fields(body, ("amount", "refund_type"), ("state",))
        state = _optional_str(fields, "state") or "Completed"
        return 201, sim.external_refund(capture_id, fields["amount"], fields["refund_type"], state=state)
    raise ControlError(404, "NotFound", f"no control route {method} {path}")


def _create_capture(sim: Simulator, body: Json) -> tuple[int, Any]:
    fields = _fields(body, ("amount", "currency_code"), ("state", "seller_id", "capture_reference_id"))
    state = _optional_str(fields, "state") or "Completed"
    capture_id = sim.create_capture(
        fields["amount"],
        fields["currency_code"],
        state=state,
        seller_id=_optional_str(fields, "seller_id"),
        capture_reference_id=_optional_str(fields, "capture_reference_id"),
    )
    return 201, {"amazon_capture_id": capture_id}


def _create_charge(sim: Simulator, body: Json) -> tuple[int, Any]:
    fields = _fields(body, ("amount", "currency_code"), ("state", "merchant_id"))
    state = _optional_str(fields, "state") or "Captured"
    charge_id = sim.create_charge(
        fields["amount"],
        fields["currency_code"],
        state=state,
        merchant_id=_optional_str(fields, "merchant_id"),
    )
    return 201, {"amazon_charge_id": charge_id}


def _add_fault(sim: Simulator, body: Json) -> tuple[int, Any]:
    fields = _fields(body, ("operation", "fault"), ("count", "hold_seconds"))
    sim.add_fault(fields["operation"], fields["fault"], fields.get("count", 1), fields.get("hold_seconds"))
    return 201, {"operation": fields["operation"], "fault": fields["fault"], "count": fields.get("count", 1)}


def _settle(sim: Simulator, body: Json) -> tuple[int, Any]:
    fields = _fields(body, (), ("all",))
    everything = fields.get("all", False)
    if not isinstance(everything, bool):
        raise ControlError(400, "InvalidField", "all must be true or false")
    return 200, {"settled": sim.settle(everything=everything)}


def _advance(sim: Simulator, body: Json) -> tuple[int, Any]:
    fields = _fields(body, ("seconds",))
    now = sim.advance_clock(fields["seconds"])
    return 200, {"now": now.isoformat()}


def _reset(sim: Simulator, body: Json) -> tuple[int, Any]:
    _fields(body, ())
    sim.reset()
    return 200, {"reset": True}


def _throttling(sim: Simulator, body: Json) -> tuple[int, Any]:
    fields = _fields(body, ("enabled",))
    if not isinstance(fields["enabled"], bool):
        raise ControlError(400, "InvalidField", "enabled must be true or false")
    sim.set_throttling(fields["enabled"])
    return 200, {"enabled": fields["enabled"]}


def _configure_ipn(sim: Simulator, body: Json) -> tuple[int, Any]:
    fields = _fields(body, (), ("url", "signature_version", "max_attempts", "retry_delay_seconds"))
    if "url" in fields:
        sim.set_ipn_url(_optional_str(fields, "url"))
    version = _optional_str(fields, "signature_version")
    sim.set_ipn_options(
        signature_version=version,
        max_attempts=fields.get("max_attempts"),
        retry_delay_seconds=fields.get("retry_delay_seconds"),
    )
    return 200, sim.ipn_settings()


def _add_ipn_fault(sim: Simulator, body: Json) -> tuple[int, Any]:
    fields = _fields(body, ("fault",), ("count", "seconds"))
    count = fields.get("count", 1)
    sim.add_ipn_fault(fields["fault"], count, fields.get("seconds"))
    return 201, {"fault": fields["fault"], "count": count, "seconds": fields.get("seconds")}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amazon-pay-sim", description="Amazon Pay v1 and API v2 sandbox simulator (local testing only)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seller-id", default=DEFAULT_SELLER_ID)
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument("--settle-seconds", type=float, default=DEFAULT_SETTLE_SECONDS)
    parser.add_argument("--no-throttling", action="store_true", help="switch Amazon's request quotas off")
    parser.add_argument("--ipn-url", help="post SNS-signed refund IPNs to this URL")
    parser.add_argument(
        "--ipn-signature-version",
        choices=SIGNATURE_VERSIONS,
        default="alternate",
        help="SNS SignatureVersion of the IPNs: 1 (SHA1), 2 (SHA256), or alternate (default)",
    )
    parser.add_argument("--ipn-region", choices=sorted(IPN_REGIONS), default="us")
    parser.add_argument(
        "--ipn-attempts", type=int, default=RetryPolicy.max_attempts, help="deliveries of one IPN at most"
    )
    parser.add_argument(
        "--ipn-retry-delay",
        type=float,
        default=RetryPolicy.first_delay,
        help="seconds before the first redelivery (doubling after each)",
    )
    parser.add_argument(
        "--ca-dir", help="keep the local SNS certificate authority in this directory (created if need be)"
    )
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh self-signed certificate")
    parser.add_argument("--tls-cert-file", help="with --tls: also write the certificate (PEM) to this file")
    parser.add_argument(
        "--v2-public-key-id",
        action="append",
        default=[],
        metavar="ID",
        help="an API v2 public key id (repeatable)",
    )
    parser.add_argument(
        "--v2-public-key",
        action="append",
        default=[],
        metavar="PEM_FILE",
        help="the public key (PEM file) of the --v2-public-key-id at the same position",
    )
    parser.add_argument(
        "--v2-merchant-id", action="append", default=[], metavar="ID",
        help="the merchant of the key at the same position (default: --seller-id)",
    )  # fmt: skip
    return parser


def _register_v2_keys(simulator: Simulator, args: argparse.Namespace) -> None:
    ids, files, merchants = args.v2_public_key_id, args.v2_public_key, args.v2_merchant_id
    if len(ids) != len(files) or len(merchants) > len(ids):
        raise ValueError(
            "give one --v2-public-key PEM_FILE per --v2-public-key-id (and at most one merchant)"
        )
    for n, (key_id, file) in enumerate(zip(ids, files, strict=True)):
        merchant = merchants[n] if n < len(merchants) else None
        simulator.add_v2_key(key_id, Path(file).read_bytes(), merchant)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.settle_seconds < 0:
        _parser().error("--settle-seconds must not be negative")
    try:
        simulator = Simulator(
            seller_id=args.seller_id,
            access_key=args.access_key,
            secret_key=args.secret_key,
            settle_seconds=args.settle_seconds,
            throttling=not args.no_throttling,
            ipn_url=args.ipn_url,
            ipn_signature_version=args.ipn_signature_version,
            ipn_region=args.ipn_region,
            ipn_retry=RetryPolicy(max_attempts=args.ipn_attempts, first_delay=args.ipn_retry_delay),
            ca_dir=args.ca_dir,
        )
        _register_v2_keys(simulator, args)
    except (ControlError, ValueError, OSError) as error:
        print(f"amazon-pay-sim: {error}", file=sys.stderr)
        return 2
    try:
        handle = simulator.serve(host=args.host, port=args.port, tls=args.tls)
    except OSError as error:
        print(f"amazon-pay-sim: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    # Ctrl-C may come as soon as the first line is out: everything after serve() is inside the try.
    try:
        print(f"amazon-pay-sim listening on {handle.url}", flush=True)
        print(f"  MWS endpoint: {handle.mws_url}", flush=True)
        print(
            f"  seller {args.seller_id}, access key {args.access_key}; control API at {handle.url}/simulator"
        )
        print(f"  API v2: {handle.url}/v2 (SANDBOX- key ids) and {handle.url}/sandbox/v2; keys: ", end="")
        print(
            ", ".join(simulator.pay_v2.public_key_ids()) or "none (--v2-public-key-id/--v2-public-key)",
            flush=True,
        )
        if handle.tls_certificate_pem is not None:
            if args.tls_cert_file:
                Path(args.tls_cert_file).write_text(handle.tls_certificate_pem, encoding="ascii")
            where = f" (also {args.tls_cert_file})" if args.tls_cert_file else ""
            print(f"  TLS certificate (self-signed): {handle.url}{TLS_CERTIFICATE_PATH}{where}", flush=True)
        ca_file = f" (also {args.ca_dir}/ca.pem)" if args.ca_dir else ""
        print(f"  SNS signing certificate: {simulator.signing_certificate_url}", flush=True)
        print(f"  local CA: {handle.url}{CA_PATH}{ca_file}", flush=True)
        print(f"  certificate URL prefix (for LocalAuthorityTrust): {simulator.certificate_url_prefix}")
        target = args.ipn_url or "nowhere yet (--ipn-url, or POST /simulator/ipn)"
        print(f"  IPNs: posting to {target}", flush=True)
        print("  Ctrl-C stops it.", flush=True)
        handle.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.shutdown()
    print("amazon-pay-sim stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
