"""API Gateway (REST, Lambda proxy integration) emulated over real HTTP, with its routes from template.yaml.

What the deployed API does, and so what this does:
- a path or method the API does not define → 403 MISSING_AUTHENTICATION_TOKEN ("Missing Authentication
  Token"): REST APIs answer that, not 404/405, for unknown resources and methods;
- a route with IAM authorization (AWS_IAM) and no, a wrong or a stale SigV4 signature, or a signer whose
  policies do not allow execute-api:Invoke on it → 403, as API Gateway answers (sigv4.py); a signed call
  reaches the handler with the signer in requestContext.identity (userArn, user, accessKey);
- a route with ApiKeyRequired and no, or a wrong, `x-api-key` header → 403 INVALID_API_KEY ("Forbidden");
- a body over 10 MB → 413 REQUEST_TOO_LARGE;
  all three shaped by the template's GatewayResponses (their type, else DEFAULT_4XX/DEFAULT_5XX);
- the handler raises, times out, cannot be imported, or returns a malformed proxy response → 502
  `{"message": "Internal server error"}` (the traceback or reason goes to the log);
- no answer from the function within the integration timeout (29 s, from the request's arrival, including
  a wait for a free execution environment) → 504 INTEGRATION_TIMEOUT, "Endpoint request timed out" (AWS's
  default body `{"message": "Endpoint request timed out"}`, shaped by the template's DEFAULT_5XX); the
  invocation itself runs on to its end or its own Timeout, as Lambda's does;
- otherwise the handler's statusCode, headers and multiValueHeaders, and body (base64-decoded when
  isBase64Encoded).
Not emulated: usage-plan and stage throttling, binary media types, the stage prefix in the URL (the API is
served at the root, as `sam local start-api` does; the event's requestContext still names the stage).
"""

from __future__ import annotations

import base64
import concurrent.futures
import hmac
import json
import logging
import re
import threading
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .lambdas import (
    FunctionError,
    FunctionTimedOut,
    Handler,
    HandlerUnavailable,
    LambdaFunction,
    NoEnvironmentFree,
)
from .sigv4 import Authorizer, Caller, Refused
from .template import ApiSpec, GatewayResponseSpec, RouteSpec

logger = logging.getLogger("refunds_local.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway REST payload limit
API_ID = "localapi01"
# API Gateway's maximum integration timeout for a REST API (the default; a quota increase raises it).
INTEGRATION_TIMEOUT_SECONDS = 29.0

# API Gateway's own refusals: (default status, default message, x-amzn-ErrorType).
MISSING_AUTHENTICATION_TOKEN = "MISSING_AUTHENTICATION_TOKEN"  # noqa: S105 - a response type
INVALID_API_KEY = "INVALID_API_KEY"
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
INTEGRATION_TIMEOUT = "INTEGRATION_TIMEOUT"
_REFUSALS: dict[str, tuple[int, str, str]] = {
    MISSING_AUTHENTICATION_TOKEN: (
        403,
        "Missing Authentication Token",
        "MissingAuthenticationTokenException",
    ),
    INVALID_API_KEY: (403, "Forbidden", "ForbiddenException"),
    REQUEST_TOO_LARGE: (413, "Request Too Long", "RequestEntityTooLargeException"),
    # IAM authorization (sigv4.py gives the message and x-amzn-ErrorType of each refusal)
    "INVALID_SIGNATURE": (403, "Forbidden", "InvalidSignatureException"),
    "ACCESS_DENIED": (403, "Forbidden", "AccessDeniedException"),
    INTEGRATION_TIMEOUT: (504, "Endpoint request timed out", "InternalServerErrorException"),
}
INTERNAL_SERVER_ERROR_BODY = '{"message": "Internal server error"}'
_PROXY_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


@dataclass(frozen=True)
class Response:
    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


class Route:
    """A resource path with {param} (one segment) or {param+} (the rest) placeholders, and its method."""

    def __init__(self, spec: RouteSpec, function: LambdaFunction) -> None:
        self.spec = spec
        self.function = function
        self.handler_override: Handler | None = None
        self.segments = [segment for segment in spec.path.strip("/").split("/") if segment]

    def match(self, path: str) -> dict[str, str] | None:
        parts = [unquote(part) for part in path.strip("/").split("/")] if path.strip("/") else []
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            if greedy:
                rest = parts[index:]
                if not rest or any(not part for part in rest):
                    return None
                params[greedy.group(1)] = "/".join(rest)
                return params
            if index >= len(parts) or not parts[index]:
                return None
            placeholder = re.fullmatch(r"\{(\w+)\}", segment)
            if placeholder:
                params[placeholder.group(1)] = parts[index]
            elif segment != parts[index]:
                return None
        return params if len(parts) == len(self.segments) else None

    @property
    def specificity(self) -> tuple[int, ...]:
        """API Gateway prefers literal segments to {param}, and {param} to {param+}."""
        return tuple(0 if "{" not in s else 1 if not s.endswith("+}") else 2 for s in self.segments)


class Gateway:
    """The HTTP server. `start()` listens on 127.0.0.1:port (0: an ephemeral port); `stop()` closes it."""

    def __init__(
        self,
        api: ApiSpec,
        functions: Mapping[str, LambdaFunction],
        *,
        api_key: str,
        port: int = 3000,
        host: str = "127.0.0.1",
        authorizer: Authorizer | None = None,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        """`authorizer`: decides the AWS_IAM routes; without one, they refuse every call."""
        self.api = api
        self.integration_timeout = integration_timeout
        self.api_key = api_key
        self.authorizer = authorizer
        self.routes = [Route(spec, functions[spec.function]) for spec in api.routes]
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> None:
        handler = type("LocalGatewayHandler", (_RequestHandler,), {"gateway": self})
        httpd = _Server((self._host, self._port), handler)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="refunds-local-gateway",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the gateway is not listening")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- tests --

    def override_route(self, method: str, path: str, handler: Handler | None) -> None:
        """Send one route (method and template path, e.g. "GET", "/refunds/{refund_id}") to `handler`."""
        for route in self.routes:
            if route.spec.method == method.upper() and route.spec.path == path:
                route.handler_override = handler
                return
        raise KeyError(f"the template has no route {method.upper()} {path}")

    # -- requests --

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        candidates = []
        for route in self.routes:
            params = route.match(path)
            if params is not None and route.spec.method in (method, "ANY"):
                candidates.append((route.specificity, route.spec.method == "ANY", route, params))
        if not candidates:
            return None
        candidates.sort(key=lambda c: (c[0], c[1]))
        return candidates[0][2], candidates[0][3]

    def handle(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes, source_ip: str
    ) -> Response:
        request_id = str(uuid.uuid4())
        parts = urlsplit(target)
        path = parts.path or "/"
        found = self.resolve(method, path)
        if found is None:
            return self.refusal(MISSING_AUTHENTICATION_TOKEN, request_id)
        route, path_parameters = found
        caller: Caller | None = None
        if route.spec.authorization == "AWS_IAM":
            decided = (
                self.authorizer.authorize(method, target, headers, body)
                if self.authorizer is not None
                else Refused(MISSING_AUTHENTICATION_TOKEN, "Missing Authentication Token", "")
            )
            if isinstance(decided, Refused):
                return self.refusal(
                    decided.response_type, request_id, decided.message, decided.error_type or None
                )
            caller = decided
        sent_key = next((v for k, v in headers if k.lower() == "x-api-key"), None)
        if route.spec.api_key_required and (
            sent_key is None or not hmac.compare_digest(sent_key.encode(), self.api_key.encode())
        ):
            return self.refusal(INVALID_API_KEY, request_id)
        event = self.proxy_event(
            route, method, path, parts.query, headers, body, path_parameters, request_id, source_ip, caller
        )
        started = time.monotonic()
        response = self._invoke(route, event, request_id, started + self.integration_timeout)
        logger.info(
            "%s %s -> %d (%s, %.0f ms)",
            method,
            path,
            response.status,
            route.spec.function,
            (time.monotonic() - started) * 1000,
        )
        return response

    def proxy_event(
        self,
        route: Route,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        path_parameters: Mapping[str, str],
        request_id: str,
        source_ip: str,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        """The REST API Lambda proxy integration's event (payload format 1.0); `caller`: the SigV4 signer."""
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        now = datetime.now(UTC)
        sent_key = next((v for k, v in headers if k.lower() == "x-api-key"), None)
        header_value = {name.lower(): values[-1] for name, values in multi_headers.items()}
        return {
            "resource": route.spec.path,
            "path": path,
            "httpMethod": method,
            "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": dict(path_parameters) or None,
            "stageVariables": None,
            "body": body.decode("utf-8", errors="replace") if body else None,
            "isBase64Encoded": False,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": API_ID,
                "domainName": header_value.get("host", "127.0.0.1"),
                "domainPrefix": API_ID,
                "extendedRequestId": request_id,
                "httpMethod": method,
                "identity": {
                    "accessKey": caller.access_key_id if caller else None,
                    "accountId": "123456789012" if caller else None,
                    "apiKey": sent_key if route.spec.api_key_required else None,
                    "apiKeyId": "local-api-key" if route.spec.api_key_required else None,
                    "caller": caller.user_id if caller else None,
                    "sourceIp": source_ip,
                    "user": caller.user_id if caller else None,
                    "userAgent": header_value.get("user-agent"),
                    "userArn": caller.arn if caller else None,
                },
                "path": f"/{self.api.stage}{path}",
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "resourceId": route.spec.event,
                "resourcePath": route.spec.path,
                "stage": self.api.stage,
            },
        }

    def _invoke(self, route: Route, event: dict[str, Any], request_id: str, deadline: float) -> Response:
        function = route.function
        try:
            if route.handler_override is not None:
                context = function.new_context()
                result = route.handler_override(event, context)
            else:
                waited = max(deadline - time.monotonic(), 0.0)
                future = function.submit(event, wait=waited)
                result = future.result(timeout=waited)
        except (concurrent.futures.TimeoutError, NoEnvironmentFree):
            logger.error(
                "%s: no answer within the integration timeout (%.1f s): 504",
                route.spec.function,
                self.integration_timeout,
            )
            return self.refusal(INTEGRATION_TIMEOUT, request_id)
        except HandlerUnavailable as error:
            logger.error("%s: handler unavailable: %s", route.spec.function, error)
            return self.internal_error(request_id)
        except FunctionTimedOut as error:
            logger.error("%s: %s", route.spec.function, error)
            return self.internal_error(request_id)
        except FunctionError as error:
            logger.error(
                "%s raised (API Gateway answers 502): %s: %s\n%s",
                route.spec.function,
                error.error_type,
                error,
                error.text,
            )
            return self.internal_error(request_id)
        except Exception:
            logger.error(
                "%s raised (API Gateway answers 502):\n%s", route.spec.function, traceback.format_exc()
            )
            return self.internal_error(request_id)
        try:
            return self._proxy_response(result, request_id)
        except ValueError as error:
            logger.error("%s: malformed Lambda proxy response: %s", route.spec.function, error)
            return self.internal_error(request_id)

    @staticmethod
    def _proxy_response(result: Any, request_id: str) -> Response:
        if not isinstance(result, dict):
            raise ValueError(f"expected a JSON object, got {type(result).__name__}")
        unknown = set(result) - _PROXY_RESPONSE_KEYS
        if unknown:
            raise ValueError(f"unexpected keys {sorted(unknown)}")
        status = result.get("statusCode")
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise ValueError(f"statusCode must be an HTTP status, not {status!r}")
        body = result.get("body")
        if body is not None and not isinstance(body, str):
            raise ValueError("body must be a string")
        raw = body.encode("utf-8") if body else b""
        if result.get("isBase64Encoded") and body:
            try:
                raw = base64.b64decode(body, validate=True)
            except ValueError:
                raise ValueError("isBase64Encoded but the body is not base64") from None
        headers: list[tuple[str, str]] = []
        single = result.get("headers") or {}
        multi = result.get("multiValueHeaders") or {}
        if not isinstance(single, dict) or not isinstance(multi, dict):
            raise ValueError("headers and multiValueHeaders must be objects")
        for name, values in multi.items():
            if not isinstance(values, list):
                raise ValueError(f"multiValueHeaders[{name!r}] must be a list")
            headers.extend((str(name), str(value)) for value in values)
        taken = {name.lower() for name, _ in headers}
        headers.extend((str(k), str(v)) for k, v in single.items() if str(k).lower() not in taken)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        headers.append(("x-amzn-RequestId", request_id))
        return Response(status, headers, raw)

    def internal_error(self, request_id: str) -> Response:
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", "InternalServerErrorException"),
        ]
        return Response(502, headers, INTERNAL_SERVER_ERROR_BODY.encode())

    def refusal(
        self,
        response_type: str,
        request_id: str,
        message: str | None = None,
        error_type: str | None = None,
    ) -> Response:
        """API Gateway's own answer of `response_type` (its default message and error type unless given),
        through the template's GatewayResponses."""
        status, default_message, default_error_type = _REFUSALS[response_type]
        message = message or default_message
        error_type = error_type or default_error_type
        default_type = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        responses = self.api.gateway_responses
        spec: GatewayResponseSpec | None = responses.get(response_type) or responses.get(default_type)
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]
        headers.append(("x-amzn-ErrorType", error_type))
        body = json.dumps({"message": message})
        if spec is not None:
            # A DEFAULT_* StatusCode only applies to the responses that have no type-specific one.
            if spec.status_code is not None:
                status = spec.status_code
            template = spec.templates.get("application/json")
            if template is not None:
                body = render_gateway_template(template, response_type, message)
            headers.extend(spec.headers.items())
        logger.info("gateway refusal %s -> %d", response_type, status)
        return Response(status, headers, body.encode("utf-8"))


def render_gateway_template(template: str, response_type: str, message: str) -> str:
    """The $context.error variables API Gateway substitutes in gateway response templates."""
    values = {
        "$context.error.messageString": json.dumps(message),
        "$context.error.message": message,
        "$context.error.responseType": response_type,
    }
    pattern = re.compile("|".join(re.escape(name) for name in sorted(values, key=len, reverse=True)))
    return pattern.sub(lambda match: values[match.group(0)], template)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many storefront requests may arrive at once (socketserver's default: 5)


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"
    server_version = "refunds-local-gateway"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.client_address[0], *args)

    def _dispatch(self) -> None:
        length_header = self.headers.get("Content-Length")
        try:
            length = int(length_header) if length_header else 0
        except ValueError:
            length = -1
        if length < 0:
            self._send(Response(400, [("Content-Type", "application/json")], b'{"message": "Bad Request"}'))
            self.close_connection = True
            return
        if length > MAX_BODY_BYTES:
            self._send(self.gateway.refusal(REQUEST_TOO_LARGE, str(uuid.uuid4())))
            self.close_connection = True  # the body is left unread
            return
        body = self.rfile.read(length) if length else b""
        response = self.gateway.handle(
            self.command, self.path, list(self.headers.items()), body, self.client_address[0]
        )
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch
