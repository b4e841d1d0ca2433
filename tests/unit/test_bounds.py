"""domain.bounds: depth, node count and JSON size of untrusted values, measured without recursion."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from kubemart.domain.bounds import ValueLimits, check_values, cut

LIMITS = {"max_depth": 4, "max_nodes": 50, "max_bytes": 200}


def nested(depth: int, leaf: Any = 1) -> Any:
    """`depth` maps nested in one another, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="null"),
        pytest.param({}, id="empty map"),
        pytest.param({"replicaCount": 2, "image": {"tag": "1.0"}}, id="ordinary values"),
        pytest.param(nested(4), id="exactly max depth"),
        pytest.param({"l": [[1, 2], [3]]}, id="lists count as levels"),
        pytest.param({"s": "é" * 40}, id="non-ASCII within size"),
        pytest.param({"n": 1.5, "b": False, "z": None, "i": -3}, id="every scalar kind"),
        pytest.param({"k": list(range(40))}, id="exactly under max nodes"),
    ],
)
def test_values_within_bounds(value: Any) -> None:
    assert check_values(value, **LIMITS) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param(nested(5), ["nested more than 4 levels", "at spec.values.a.a.a.a"], id="map too deep"),
        pytest.param(
            {"x": [[[[1]]]]}, ["nested more than 4 levels", "spec.values.x[0][0][0]"], id="list too deep"
        ),
        pytest.param({"k": list(range(60))}, ["more than 50 values"], id="too many nodes"),
        pytest.param({"s": "x" * 300}, ["larger than 200 bytes"], id="long string"),
        pytest.param({"s": "é" * 120}, ["larger than 200 bytes"], id="UTF-8 bytes counted"),
        pytest.param({"k" * 300: 1}, ["larger than 200 bytes"], id="long key"),
        pytest.param({"d": b"raw"}, ["spec.values.d is a bytes, which JSON cannot hold"], id="bytes"),
        pytest.param({"f": float("nan")}, ["spec.values.f is a float"], id="NaN"),
        pytest.param({"s": {1, 2}}, ["spec.values.s is a set"], id="set"),
    ],
)
def test_values_beyond_a_bound_are_named(value: Any, words: list[str]) -> None:
    message = check_values(value, **LIMITS)
    assert message is not None
    for word in words:
        assert word in message, message


def test_size_is_the_compact_json_length() -> None:
    value = {"a": [1, "two", None, True, 2.5], "b": {"c": "é"}}
    exact = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    assert check_values(value, max_depth=10, max_nodes=100, max_bytes=exact) is None
    assert check_values(value, max_depth=10, max_nodes=100, max_bytes=exact - 1) is not None


def test_the_path_in_a_message_is_cut() -> None:
    message = check_values(nested(500), max_depth=32, max_nodes=10**6, max_bytes=10**9, what="values")
    assert message is not None
    assert "(at values.a.a.a.a.a.a...)" in message
    long_key = {"k" * 1000: nested(40)}
    message = check_values(long_key, max_depth=32, max_nodes=10**6, max_bytes=10**9)
    assert message is not None
    assert len(message) < 300


@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
def test_deep_values_are_refused_without_recursion_and_at_once(depth: int) -> None:
    value = nested(depth)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # anything recursive would fail here
    try:
        message = check_values(value, max_depth=32, max_nodes=100_000, max_bytes=1 << 20)
    finally:
        sys.setrecursionlimit(limit)
    assert message is not None
    assert "nested more than 32 levels" in message


class _Counted(list[int]):
    """A list that counts the items anyone looks at."""

    seen = 0

    def __iter__(self) -> Iterator[int]:
        for item in super().__iter__():
            _Counted.seen += 1
            yield item


def test_cost_is_bounded_by_the_node_limit() -> None:
    huge = {"k": _Counted([0] * 2_000_000)}
    _Counted.seen = 0
    message = check_values(huge, max_depth=32, max_nodes=10_000, max_bytes=1 << 30)
    assert message is not None
    assert "more than 10000 values" in message
    assert _Counted.seen <= 10_000, "stops at the bound: the cost follows the limit, not the input"


def test_huge_integers_are_measured_without_printing_them() -> None:
    big = 10**100_000  # str() of it is refused by Python's int_max_str_digits
    assert check_values({"n": big}, max_depth=4, max_nodes=10, max_bytes=1000) is not None
    assert check_values({"n": big}, max_depth=4, max_nodes=10, max_bytes=200_000) is None


def test_default_limits_are_generous() -> None:
    limits = ValueLimits()
    chart_like = {
        f"component{i}": {"image": {"repository": "r", "tag": "t"}, "env": [{"name": "A", "value": "b"}]}
        for i in range(200)
    }
    assert (
        check_values(
            chart_like, max_depth=limits.max_depth, max_nodes=limits.max_nodes, max_bytes=limits.max_bytes
        )
        is None
    )


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("short", 10, "short"), ("exactly10!", 10, "exactly10!"), ("a" * 20, 10, "aaaaaaa...")],
)
def test_cut(text: str, limit: int, expected: str) -> None:
    assert cut(text, limit) == expected
