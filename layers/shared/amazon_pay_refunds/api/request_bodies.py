"""Storefront request bodies: JSON only, parsed strictly.

Python's `json.loads` takes the last of duplicate keys (`{"amount": "1.00", "amount": "99.00"}` would be a
99.00 refund to one reader and a 1.00 refund to another), raises RecursionError on deep nesting and
ValueError on integers over 4,300 digits, and turns `1e999999` into infinity. `strict_json_loads` refuses
all of these as `json.JSONDecodeError`, which the API answers 400 `MalformedRequest`. No valid body of
this API nests deeper than 3 levels or holds a number at all (amounts are strings).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from amazon_pay_refunds.use_cases.errors import RefundServiceError

ACCEPTED_CONTENT_TYPE = "application/json"
MAX_DEPTH = 16
MAX_NUMBER_LENGTH = 40


class UnsupportedMediaType(RefundServiceError):
    """A request body in another format than JSON (a form, text, a file upload)."""

    code = "UnsupportedMediaType"

    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"the body must be {ACCEPTED_CONTENT_TYPE} (got {content_type}); send the header "
            f"'Content-Type: {ACCEPTED_CONTENT_TYPE}'",
            {"content_type": content_type, "accepted": [ACCEPTED_CONTENT_TYPE]},
        )


def content_type_refusal(method: str, headers: Mapping[str, str] | None) -> UnsupportedMediaType | None:
    """UnsupportedMediaType when a request that carries a body declares another type than JSON.

    No Content-Type at all is read as JSON, as most HTTP clients send JSON without saying so.
    """
    if method.upper() not in ("POST", "PUT", "PATCH"):
        return None
    declared = next((v for k, v in (headers or {}).items() if k.lower() == "content-type"), "") or ""
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type in ("", ACCEPTED_CONTENT_TYPE):
        return None
    return UnsupportedMediaType(declared.strip()[:100])


class _Refused(ValueError):
    """Raised by the parse hooks; turned into json.JSONDecodeError with the same message."""


def strict_json_loads(text: str) -> Any:
    """The JSON value of `text`; json.JSONDecodeError for duplicate keys, deep nesting, unusable numbers."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
        )
    except RecursionError:
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", text, 0) from None
    except _Refused as refused:
        raise json.JSONDecodeError(str(refused), text, 0) from None
    if _depth(value) > MAX_DEPTH:
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", text, 0)
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"duplicate key {key[:64]!r}")
        result[key] = value
    return result


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_LENGTH:
        raise _Refused(f"a number of {len(text)} characters")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_LENGTH:
        raise _Refused(f"a number of {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """Nesting depth without recursion (the parser already bounded it by the interpreter's limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            current = list(current.values())
        if isinstance(current, list):
            deepest = max(deepest, depth)
            stack.extend((item, depth + 1) for item in current)
    return deepest
