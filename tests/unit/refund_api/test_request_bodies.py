"""Strict JSON for storefront bodies: what Python's json module would take silently is refused."""

from __future__ import annotations

import json

import pytest

from amazon_pay_refunds.api.request_bodies import (
    MAX_DEPTH,
    MAX_NUMBER_LENGTH,
    content_type_refusal,
    strict_json_loads,
)


def test_a_request_body_parses_as_json_does() -> None:
    text = '{"refund_id": "r-1", "amount": "12.50", "metadata": {"a": "1"}, "n": 3, "x": 1.5, "ok": true}'
    assert strict_json_loads(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"amount": "1.00", "amount": "99.00"}',
        '{"metadata": {"a": "1", "a": "2"}}',
        '[{"k": 1, "k": 1}]',
    ],
)
def test_duplicate_keys_at_any_depth_are_refused(text: str) -> None:
    with pytest.raises(json.JSONDecodeError, match="duplicate key"):
        strict_json_loads(text)


def test_nesting_is_bounded_below_the_interpreters_limit_and_far_above() -> None:
    assert strict_json_loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    for depth in (MAX_DEPTH + 1, 100_000):
        with pytest.raises(json.JSONDecodeError, match="nested deeper"):
            strict_json_loads("[" * depth + "]" * depth)


@pytest.mark.parametrize(
    "number", ["9" * (MAX_NUMBER_LENGTH + 1), "9" * 5000, "0." + "9" * 5000, "1e999999", "-1e999999"]
)
def test_numbers_no_request_has_are_refused(number: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        strict_json_loads(f'{{"amount": {number}}}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused(constant: str) -> None:
    with pytest.raises(json.JSONDecodeError, match="not JSON"):
        strict_json_loads(f'{{"amount": {constant}}}')


@pytest.mark.parametrize(
    ("method", "content_type", "refused"),
    [
        ("POST", "application/json", False),
        ("POST", "Application/JSON; charset=utf-8", False),
        ("POST", None, False),
        ("POST", "application/x-www-form-urlencoded", True),
        ("POST", "text/plain", True),
        ("POST", "application/jsonp", True),
        ("GET", "text/plain", False),
    ],
)
def test_only_json_bodies_are_taken(method: str, content_type: str | None, refused: bool) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    refusal = content_type_refusal(method, headers)
    assert (refusal is not None) is refused
    if refusal is not None:
        assert refusal.details == {"content_type": content_type, "accepted": ["application/json"]}
