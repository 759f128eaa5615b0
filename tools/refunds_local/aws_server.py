"""The local stack's AWS endpoint: moto's server app behind one lock, and Lambda `Invoke` for our functions.

moto's backends are not thread-safe (two TransactWriteItems at once corrupt its table or crash it), so every
request to moto is served under one lock. DynamoDB promises atomicity per request (each PutItem,
UpdateItem, TransactWriteItems is all-or-nothing and isolated), and one request at a time gives exactly
that, no more: the races our code must survive (two reservations on one capture) still interleave between
requests, as they do on AWS.

`POST /2015-03-31/functions/{name or ARN}/invocations` naming one of the stack's functions is answered here,
in Lambda's wire format, by running the real handler in one of the function's execution environments
(`LambdaFunction.invoke`) — moto's Step Functions engine invokes Lambda tasks over HTTP at
`http://localhost:$MOTO_PORT`, and so do boto3 clients. The moto lock is not held while a handler runs:
the handler itself calls moto.

Listeners (`add_listener`) hear of every write moto has applied to DynamoDB and of every PutEvents, once the
answer is ready: the stream and rule pumps wait for them instead of polling.
Not emulated: qualifiers other than `$LATEST`, async retries and destinations of `Event` invocations,
`LogType: Tail`, client context.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import run_wsgi_app

from .iam import IamGate
from .lambdas import FunctionError, FunctionTimedOut, HandlerUnavailable, LambdaFunction

logger = logging.getLogger("refunds_local.aws")

StartResponse = Callable[..., Any]
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")
# name, name:qualifier, account:function:name[:qualifier], arn:aws:lambda:region:account:function:name[:q]
_FUNCTION_REFERENCE = re.compile(
    r"^(?:(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:)?\d{12}:function:)?(?P<name>[A-Za-z0-9_-]+)(?::(?P<q>[^:]+))?$"
)
LATEST = "$LATEST"
# Requests after which something may be new for the pumps: a table's stream, a bus's rules' queues.
_DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement"}
)
DYNAMODB_WRITE = "dynamodb-write"
EVENTS_PUT = "events-put"


class AwsServer:
    """moto on 127.0.0.1 (threaded werkzeug server); `start()`/`stop()`; `url` once started."""

    def __init__(self, functions: Mapping[str, LambdaFunction], *, host: str = "127.0.0.1", port: int = 0):
        self._functions = {function.name: function for function in functions.values()}
        self._host, self._port = host, port
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._moto_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._background: list[threading.Thread] = []
        self._background_lock = threading.Lock()
        # When set, every signed request is allowed or refused by its signer's role first (iam.py).
        self.gate: IamGate | None = None
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """`listener(DYNAMODB_WRITE or EVENTS_PUT)` after each such request moto has answered."""
        self._listeners.append(listener)

    # -- lifecycle --

    def start(self) -> None:
        server = make_server(self._host, self._port, self, threaded=True, request_handler=MotoRequestHandler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="refunds-local-aws", daemon=True
        )
        self._thread.start()

    def stop(self, wait_seconds: float = 10.0) -> None:
        """Stop listening; wait a bounded time for `Event` invocations still running."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._background_lock:
            running, self._background = self._background, []
        for thread in running:
            thread.join(timeout=wait_seconds)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the AWS server is not listening")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- WSGI --

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        function = self._invoked_function(environ)
        if function is not None:
            return self._invoke(function, environ, start_response)
        gate = self.gate
        if gate is not None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            environ["wsgi.input"] = io.BytesIO(body)
            refusal = gate.check_request(_signed_headers(environ), body)
            if refusal is not None:
                refused_status, refused_headers, refused_body = refusal.wsgi()
                logger.warning("refused: %s", refusal.message)
                start_response(refused_status, refused_headers)
                return [refused_body]
        with self._moto_lock:
            # Buffered, so that moto has produced its whole answer before the lock is released.
            body, status, headers = run_wsgi_app(self._moto, environ, buffered=True)
            payload = b"".join(body)
        self._notify(str(environ.get("HTTP_X_AMZ_TARGET", "")))
        start_response(status, headers.to_wsgi_list())
        return [payload]

    def _notify(self, target: str) -> None:
        prefix, _, operation = target.rpartition(".")
        if prefix.startswith("DynamoDB_") and operation in _DYNAMODB_WRITES:
            change = DYNAMODB_WRITE
        elif prefix == "AWSEvents" and operation == "PutEvents":
            change = EVENTS_PUT
        else:
            return
        for listener in list(self._listeners):
            listener(change)

    def _invoked_function(self, environ: Mapping[str, Any]) -> LambdaFunction | None:
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        found = INVOKE_PATH.fullmatch(str(environ.get("PATH_INFO", "")))
        if found is None:
            return None
        reference = _FUNCTION_REFERENCE.fullmatch(unquote(found.group("function")))
        if reference is None:
            return None
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        qualifiers = {reference.group("q"), *query.get("Qualifier", [])} - {None}
        if qualifiers - {LATEST}:
            return None
        return self._functions.get(reference.group("name"))

    # -- Lambda Invoke --

    def _invoke(
        self, function: LambdaFunction, environ: Mapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        invocation_type = str(environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            event = json.loads(raw) if raw.strip() else {}
        except ValueError as error:
            return _answer(
                start_response,
                "400 Bad Request",
                {"Type": "User", "message": f"Could not parse request body into json: {error}"},
                request_id,
                [("x-amzn-ErrorType", "InvalidRequestContentException")],
            )
        gate = self.gate
        if gate is not None:
            refusal = gate.check_invoke(_signed_headers(environ), function.arn, event)
            if refusal is not None:
                logger.warning("refused: %s", refusal.message)
                return _answer(
                    start_response,
                    "403 Forbidden",
                    {"Type": "User", "Message": refusal.message},
                    request_id,
                    [("x-amzn-ErrorType", refusal.code)],
                )
        if invocation_type == "DryRun":
            return _answer(start_response, "204 No Content", None, request_id)
        if invocation_type == "Event":
            worker = threading.Thread(
                target=self._run_event,
                args=(function, event, request_id),
                name=f"lambda-event-{function.spec.logical_id}",
                daemon=True,
            )
            with self._background_lock:
                self._background = [t for t in self._background if t.is_alive()] + [worker]
            worker.start()
            return _answer(start_response, "202 Accepted", None, request_id)
        if invocation_type != "RequestResponse":
            return _answer(
                start_response,
                "400 Bad Request",
                {"Type": "User", "message": f"Invalid InvocationType {invocation_type!r}"},
                request_id,
                [("x-amzn-ErrorType", "InvalidParameterValueException")],
            )
        try:
            result = function.invoke(event, request_id=request_id)
            payload = json.dumps(result).encode("utf-8")
        except Exception as error:
            return _answer(
                start_response,
                "200 OK",
                _function_error(function, error, request_id),
                request_id,
                [("X-Amz-Function-Error", "Unhandled")],
            )
        logger.info("Invoke %s -> 200", function.name)
        return _answer(start_response, "200 OK", payload, request_id)

    @staticmethod
    def _run_event(function: LambdaFunction, event: Any, request_id: str) -> None:
        try:
            function.invoke(event, request_id=request_id)
        except Exception as error:
            _function_error(function, error, request_id)  # logged there; Lambda's async retries not emulated


def _signed_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    return {
        "Authorization": str(environ.get("HTTP_AUTHORIZATION", "")),
        "X-Amz-Target": str(environ.get("HTTP_X_AMZ_TARGET", "")),
    }


def _function_error(function: LambdaFunction, error: Exception, request_id: str) -> dict[str, Any]:
    """Lambda's payload for an unhandled error, and the log line that explains it."""
    if isinstance(error, FunctionTimedOut):
        logger.error("%s: %s", function.name, error)
        return {"errorMessage": str(error), "errorType": "Sandbox.Timedout", "requestId": request_id}
    if isinstance(error, FunctionError):
        logger.error("%s raised: %s: %s\n%s", function.name, error.error_type, error, error.text)
        return {
            "errorMessage": str(error),
            "errorType": error.error_type,
            "requestId": request_id,
            "stackTrace": error.stack_trace,
        }
    if isinstance(error, HandlerUnavailable):
        logger.error("%s: handler unavailable: %s", function.name, error)
        return {"errorMessage": str(error), "errorType": "Runtime.ImportModuleError", "requestId": request_id}
    if isinstance(error, TypeError | ValueError) and "JSON serializable" in str(error):
        logger.error("%s: the result is not JSON: %s", function.name, error)
        return {"errorMessage": str(error), "errorType": "Runtime.MarshalError", "requestId": request_id}
    logger.error("%s raised:\n%s", function.name, "".join(traceback.format_exception(error)))
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _answer(
    start_response: StartResponse,
    status: str,
    body: bytes | dict[str, Any] | None,
    request_id: str,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Iterable[bytes]:
    payload = json.dumps(body).encode("utf-8") if isinstance(body, dict) else body or b""
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
        ("x-amzn-RequestId", request_id),
        ("X-Amz-Executed-Version", LATEST),
        *extra_headers,
    ]
    start_response(status, headers)
    return [payload]
