"""The API Gateway emulation over real HTTP: routes from the template, API keys, proxy events, refusals."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from typing import Any

import pytest
import requests

from refunds_local.gateway import MAX_BODY_BYTES
from refunds_local.sigv4 import sign
from refunds_local.stack import EmbeddedStack

from .handlers import Recorder, boom, malformed, slow

KEY = "local-dev-key"


def gateway_body(template: dict[str, Any], response_type: str, message: str) -> dict[str, Any]:
    """What the deployed API answers: the template's DEFAULT_4XX response template, rendered."""
    responses = template["Resources"]["RefundsApi"]["Properties"]["GatewayResponses"]
    text = responses.get(response_type, responses["DEFAULT_4XX"])["ResponseTemplates"]["application/json"]
    rendered = text.replace("$context.error.responseType", response_type).replace(
        "$context.error.messageString", json.dumps(message)
    )
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def template_routes(template: dict[str, Any]) -> set[tuple[str, str, bool, str]]:
    """(method, path, API key required, authorization) of each function's Api event, as the API's
    DefinitionBody secures it in API-key mode (StorefrontAuthorization API_KEY: the Fn::If's else)."""
    body = template["Resources"]["RefundsApi"]["Properties"]["DefinitionBody"]
    routes = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                props = event["Properties"]
                security = body["paths"][props["Path"]][props["Method"]]["security"]
                if isinstance(security, dict):
                    condition, _, api_key_mode = security["Fn::If"]
                    assert condition == "StorefrontUsesIam"
                    security = api_key_mode
                names = set(security[0]) if security else set()
                authorization = "AWS_IAM" if "sigv4" in names else "NONE"
                routes.add((props["Method"].upper(), props["Path"], "api_key" in names, authorization))
    return routes


def test_routes_are_the_templates(stack: EmbeddedStack, template: dict[str, Any]) -> None:
    local = {
        (r.spec.method, r.spec.path, r.spec.api_key_required, r.spec.authorization)
        for r in stack.gateway.routes
    }
    assert local == template_routes(template)
    assert ("POST", "/ipn", False, "NONE") in local
    assert ("POST", "/refunds/{refund_id}/resolve", False, "AWS_IAM") in local


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong-key"}, {"x-api-key": ""}])
def test_api_key_missing_or_wrong_is_refused_with_the_templates_gateway_response(
    stack: EmbeddedStack, api_handler: Recorder, template: dict[str, Any], headers: dict[str, str]
) -> None:
    answer = requests.post(f"{stack.api_url}/refunds", json={"refund_id": "r1"}, headers=headers, timeout=10)
    assert answer.status_code == 403
    assert answer.json() == gateway_body(template, "INVALID_API_KEY", "Forbidden")
    assert answer.json() == {"error": {"code": "INVALID_API_KEY", "message": "Forbidden"}}
    assert answer.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert api_handler.calls == []


def test_a_signed_operator_call_reaches_the_handler_with_a_proxy_event(
    stack: EmbeddedStack, api_handler: Recorder
) -> None:
    """resolve takes SigV4 in both modes: the operator signs (query string and body included)."""
    url = f"{stack.api_url}/refunds/ord-1001-r1/resolve?dry=1&tag=a&tag=b"
    body = b'{"method": "gift_card"}'
    operator = stack.callers["operator"]
    headers = sign(
        "POST",
        url,
        {"X-Api-Key": KEY, "Content-Type": "application/json", "X-Multi": "one"},
        body,
        operator.credentials,
        stack.region,
    )
    answer = requests.post(url, data=body, headers=headers, timeout=10)
    assert answer.status_code == 202
    assert answer.json() == {"answered": "refund-api"}
    assert answer.headers["X-Test"] == "yes"
    [(event, context)] = api_handler.calls
    assert event["resource"] == "/refunds/{refund_id}/resolve"
    assert event["path"] == "/refunds/ord-1001-r1/resolve"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"refund_id": "ord-1001-r1"}
    assert event["queryStringParameters"] == {"dry": "1", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"dry": ["1"], "tag": ["a", "b"]}
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["X-Multi"] == ["one"]
    assert event["body"] == '{"method": "gift_card"}'
    assert event["isBase64Encoded"] is False
    request_context = event["requestContext"]
    assert request_context["stage"] == "v1"
    assert request_context["resourcePath"] == "/refunds/{refund_id}/resolve"
    assert request_context["httpMethod"] == "POST"
    assert request_context["requestId"] == answer.headers["x-amzn-RequestId"]
    identity = request_context["identity"]
    assert (identity["userArn"], identity["accessKey"]) == (operator.arn, operator.access_key_id)
    assert identity["user"] == identity["caller"] == operator.user_id
    assert (identity["apiKey"], identity["apiKeyId"]) == (None, None)  # resolve needs no key
    assert identity["sourceIp"] == "127.0.0.1"
    assert context.function_name == "refunds-local-RefundApiFunction"
    assert context.invoked_function_arn.endswith(":function:refunds-local-RefundApiFunction")
    assert context.memory_limit_in_mb == 512
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 25_000  # the template's Timeout


def test_get_without_body_or_query_has_null_fields(stack: EmbeddedStack, api_handler: Recorder) -> None:
    answer = requests.get(f"{stack.api_url}/captures/S01-1234567-1234567-C000001", headers={"x-api-key": KEY})
    assert answer.status_code == 202
    [(event, _)] = api_handler.calls
    identity = event["requestContext"]["identity"]
    assert (identity["apiKey"], identity["apiKeyId"], identity["userArn"]) == (KEY, "local-api-key", None)
    assert event["pathParameters"] == {"amazon_capture_id": "S01-1234567-1234567-C000001"}
    assert (event["body"], event["queryStringParameters"]) == (None, None)


def test_ipn_needs_no_api_key(stack: EmbeddedStack, ipn_handler: Recorder, api_handler: Recorder) -> None:
    answer = requests.post(f"{stack.api_url}/ipn", data='{"Type": "Notification"}', timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"answered": "ipn"}
    [(event, _)] = ipn_handler.calls
    assert event["resource"] == "/ipn"
    assert event["pathParameters"] is None
    assert event["requestContext"]["identity"]["apiKey"] is None
    assert api_handler.calls == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing-here"),
        ("GET", "/refunds/a/b/c"),
        ("DELETE", "/refunds/ord-1"),  # a known resource, a method it does not have
        ("GET", "/refunds"),
        ("GET", "/ipn"),
    ],
)
def test_unknown_paths_and_methods_answer_as_api_gateway_does(
    stack: EmbeddedStack, api_handler: Recorder, template: dict[str, Any], method: str, path: str
) -> None:
    # REST APIs answer 403 MISSING_AUTHENTICATION_TOKEN (not 404/405), with or without a valid key.
    for headers in ({}, {"x-api-key": KEY}):
        answer = requests.request(method, f"{stack.api_url}{path}", headers=headers, timeout=10)
        assert answer.status_code == 403
        assert answer.json() == gateway_body(
            template, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token"
        )
        assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert api_handler.calls == []


def test_handler_exception_is_a_502_internal_server_error(
    stack: EmbeddedStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.function("RefundApiFunction").override(boom)
    with caplog.at_level(logging.ERROR, logger="refunds_local.gateway"):
        answer = requests.post(f"{stack.api_url}/refunds", json={}, headers={"x-api-key": KEY}, timeout=10)
    assert answer.status_code == 502
    assert answer.json() == {"message": "Internal server error"}
    assert "the handler blew up on purpose" in caplog.text
    assert "Traceback" in caplog.text


def test_malformed_proxy_response_is_a_502(stack: EmbeddedStack, caplog: pytest.LogCaptureFixture) -> None:
    stack.gateway.override_route("GET", "/refunds/{refund_id}", malformed)
    with caplog.at_level(logging.ERROR, logger="refunds_local.gateway"):
        answer = requests.get(f"{stack.api_url}/refunds/r1", headers={"x-api-key": KEY}, timeout=10)
    assert (answer.status_code, answer.json()) == (502, {"message": "Internal server error"})
    assert "malformed Lambda proxy response" in caplog.text


def test_a_handler_module_that_does_not_exist_is_a_502_with_a_clear_log_line(
    stack: EmbeddedStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.function("IpnHandlerFunction").override("functions.no_such_function.app.lambda_handler")
    with caplog.at_level(logging.ERROR, logger="refunds_local.gateway"):
        answer = requests.post(f"{stack.api_url}/ipn", data="{}", timeout=10)
    assert (answer.status_code, answer.json()) == (502, {"message": "Internal server error"})
    assert (
        "IpnHandlerFunction: handler unavailable: cannot import functions.no_such_function.app" in caplog.text
    )


def test_a_handler_past_its_timeout_is_a_502(stack: EmbeddedStack, caplog: pytest.LogCaptureFixture) -> None:
    function = stack.function("RefundApiFunction")
    function.spec = dataclasses.replace(function.spec, timeout_seconds=0.3)
    function.override(slow)
    with caplog.at_level(logging.ERROR, logger="refunds_local.gateway"):
        answer = requests.post(f"{stack.api_url}/refunds", json={}, headers={"x-api-key": KEY}, timeout=10)
    assert (answer.status_code, answer.json()) == (502, {"message": "Internal server error"})
    assert "Task timed out after 0.30 seconds" in caplog.text


def test_a_body_over_10_mb_is_refused_before_the_handler(
    stack: EmbeddedStack, api_handler: Recorder, template: dict[str, Any]
) -> None:
    with socket.create_connection(("127.0.0.1", stack.gateway.port), timeout=10) as connection:
        connection.sendall(
            (
                f"POST /refunds HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
            ).encode()
        )
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body) == gateway_body(template, "REQUEST_TOO_LARGE", "Request Too Long")
    assert api_handler.calls == []


def test_a_body_at_the_limit_is_passed_on(stack: EmbeddedStack, api_handler: Recorder) -> None:
    body = b"x" * MAX_BODY_BYTES
    answer = requests.post(f"{stack.api_url}/refunds", data=body, headers={"x-api-key": KEY}, timeout=30)
    assert answer.status_code == 202
    assert len(api_handler.calls[0][0]["body"]) == MAX_BODY_BYTES
