"""bench/_capacity.py: item sizes and units as DynamoDB documents them (no timing here)."""

from __future__ import annotations

from bench._capacity import index_write_units, item_size, read_units, write_units

KEYS = ("pk", "sk")
INDEX = ("gsi1pk", "gsi1sk")


def test_item_size_follows_the_documented_rules() -> None:
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "12.50"}}) == 1 + 2 + 1  # "125": 2 bytes + 1
    assert item_size({"f": {"BOOL": True}, "z": {"NULL": True}}) == 2 + 2
    assert item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + (1 + 2 + 1)
    assert item_size({"l": {"L": [{"S": "x"}, {"S": "yz"}]}}) == 1 + 3 + (1 + 1) + (2 + 1)
    assert item_size({"s": {"SS": ["a", "bc"]}}) == 1 + 3
    assert item_size(None) == 0


def test_write_units_round_up_per_kb_and_double_in_transactions() -> None:
    small = {"pk": {"S": "x" * 100}}
    big = {"pk": {"S": "x" * 1100}}
    assert write_units(None, small, transactional=False) == 1
    assert write_units(big, small, transactional=False) == 2  # the larger image counts
    assert write_units(None, small, transactional=True) == 2
    assert read_units(5000, consistent=True) == 2
    assert read_units(10, consistent=False) == 0.5


def test_index_writes_only_when_index_keys_appear_change_or_go() -> None:
    base = {"pk": {"S": "REFUND#a"}, "sk": {"S": "REFUND"}}
    open_ = {**base, "gsi1pk": {"S": "OPEN"}, "gsi1sk": {"S": "t#a"}}
    assert index_write_units(None, open_, KEYS, INDEX) == 1
    assert index_write_units(open_, {**open_, "status": {"S": "Pending"}}, KEYS, INDEX) == 0
    assert index_write_units(open_, base, KEYS, INDEX) == 1
    assert index_write_units(open_, {**open_, "gsi1sk": {"S": "u#a"}}, KEYS, INDEX) == 2
