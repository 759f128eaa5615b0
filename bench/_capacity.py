"""DynamoDB capacity units computed from item sizes, as DynamoDB bills them (on-demand request units).

Item size (DynamoDB developer guide, "Item sizes and formats"): the UTF-8 length of every attribute name
plus its value: strings by UTF-8 length, binary by length, numbers about 1 byte per 2 significant digits
+ 1, booleans and nulls 1 byte, lists and maps 3 bytes + their elements (+1 byte each), sets the sum of
their elements. A GSI entry is its key attributes (table and index keys) + 100 bytes.

Writes: 1 unit per started 1 KB of the larger of the item before and after the write, at least 1;
transactional writes 2 per KB. A condition that fails still costs the write (1 KB minimum). A GSI write
happens when an item gains, loses or changes its index keys (KEYS_ONLY projection: nothing else is
projected); a key change costs 2 (delete + put), each 1 unit per KB of the entry.
Reads: 1 unit per started 4 KB for a strongly consistent read, 0.5 for an eventually consistent one,
transactional 2; a missing item still costs the minimum; Query charges the total size of what it returned
(index entries for a GSI, always eventually consistent).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

ENTRY_OVERHEAD = 100


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    if "e" in text.lower():
        digits = str(Decimal(text).normalize()).lstrip("-").replace(".", "").lstrip("0")
    digits = digits.rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode("utf-8"))
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    """Bytes of an item in DynamoDB's wire format ({"name": {"S": "..."}}); 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(before: dict[str, Any] | None, after: dict[str, Any] | None, *, transactional: bool) -> int:
    units = max(1, math.ceil(max(item_size(before), item_size(after)) / 1024))
    return units * (2 if transactional else 1)


def read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / 4096))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2


def index_entry(
    item: dict[str, Any] | None, table_keys: tuple[str, ...], index_keys: tuple[str, ...]
) -> dict[str, Any] | None:
    """The GSI entry an item has (its key attributes), or None when it lacks an index key."""
    if not item or any(name not in item for name in index_keys):
        return None
    return {name: item[name] for name in (*table_keys, *index_keys) if name in item}


def index_write_units(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    table_keys: tuple[str, ...],
    index_keys: tuple[str, ...],
) -> int:
    old = index_entry(before, table_keys, index_keys)
    new = index_entry(after, table_keys, index_keys)
    if old == new:
        return 0

    def cost(entry: dict[str, Any] | None) -> int:
        return 0 if entry is None else max(1, math.ceil((item_size(entry) + ENTRY_OVERHEAD) / 1024))

    if old is None or new is None:
        return cost(old) + cost(new)
    same_keys = all(old.get(k) == new.get(k) for k in index_keys)
    return 0 if same_keys else cost(old) + cost(new)
