"""A Helm index read as chart versions: plain YAML as Helm sees it, and bombs refused within bounds."""

from __future__ import annotations

import re
import time
import tracemalloc
from typing import Any

import pytest

from kubemart.sources.helm_http.index import IndexLimits, InvalidIndex, parse_index
from support.bombs import alias_bomb


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            b"apiVersion: v1\nentries:\n  nginx:\n  - version: 1.0.0\n    name: nginx\n",
            {"nginx": [{"version": "1.0.0", "name": "nginx"}]},
            id="valid index",
        ),
        pytest.param(
            b"apiVersion: v1\nentries:\n  a:\n  - version: 1.0.0\n  - version: 1.1.0\n  b:\n  - version: 0.1.0\n",
            {"a": [{"version": "1.0.0"}, {"version": "1.1.0"}], "b": [{"version": "0.1.0"}]},
            id="several charts and versions",
        ),
        pytest.param(b"apiVersion: v1\nentries: {}\n", {}, id="empty entries mapping"),
        pytest.param(b"apiVersion: v1\nentries:\n", {}, id="null entries"),
        pytest.param(b"apiVersion: v1\ngenerated: 2024-01-01\n", {}, id="no entries key"),
        pytest.param(
            b"entries:\n  good:\n  - version: 1.0.0\n  - just a string\n  - 42\n  - null\n  - [1, 2]\n",
            {"good": [{"version": "1.0.0"}]},
            id="non-mapping versions dropped",
        ),
        pytest.param(
            b"entries:\n  good:\n  - version: 1.0.0\n  scalar: 3\n  text: hello\n  map: {version: 1.0.0}\n  none:\n",
            {"good": [{"version": "1.0.0"}]},
            id="charts that are not lists dropped",
        ),
        pytest.param(b"entries:\n  empty: []\n", {"empty": []}, id="chart with no versions kept empty"),
        pytest.param(
            b"entries:\n  1234:\n  - version: 1.0.0\n",
            {"1234": [{"version": "1.0.0"}]},
            id="numeric chart name as text",
        ),
    ],
)
def test_parse_index(body: bytes, expected: dict[str, list[dict[str, Any]]]) -> None:
    assert parse_index(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"entries: [\n  unclosed", "index.yaml is not valid YAML", id="invalid YAML"),
        pytest.param(b"key: value\n  bad indent: x\n", "index.yaml is not valid YAML", id="bad indentation"),
        pytest.param(b"\t- tab", "index.yaml is not valid YAML", id="tab character"),
        pytest.param(b"<html><body>Not Found</body></html>", "not a mapping", id="an HTML page"),
        pytest.param(b"", "not a mapping", id="empty body"),
        pytest.param(b"- a\n- b\n", "not a mapping", id="a list"),
        pytest.param(b"42", "not a mapping", id="a number"),
        pytest.param(b"entries: [a, b]\n", "no `entries` mapping", id="entries is a list"),
        pytest.param(b"entries: nope\n", "no `entries` mapping", id="entries is text"),
    ],
)
def test_parse_index_rejects(body: bytes, message: str) -> None:
    with pytest.raises(InvalidIndex, match=re.escape(message)) as err:
        parse_index(body)
    text = str(err.value)
    assert "\n" not in text, "the message is one line a person reads in the source's status"
    assert err.value.reason == "InvalidIndex"
    assert not err.value.retryable


def test_parse_index_yaml_error_names_the_problem_in_one_line() -> None:
    with pytest.raises(InvalidIndex) as err:
        parse_index(b"entries:\n  a: [1, 2\n")
    text = str(err.value)
    assert text.startswith("The index cannot be read: index.yaml is not valid YAML: ")
    assert "line 3" in text
    assert "\n" not in text


def test_an_alias_bomb_is_refused_at_once_without_expanding_it() -> None:
    bomb = alias_bomb()
    assert len(bomb) < 600
    tracemalloc.start()
    try:
        with pytest.raises(InvalidIndex, match="expands to more than") as err:
            parse_index(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024
    assert err.value.reason == "InvalidIndex"
    assert "line" in err.value.message


def test_aliases_within_the_budget_read_as_helm_sees_them() -> None:
    body = b"common: &c {home: https://x}\nentries:\n  a:\n  - <<: *c\n    version: 1.0.0\n"
    assert parse_index(body) == {"a": [{"home": "https://x", "version": "1.0.0"}]}


def test_deep_nesting_is_refused() -> None:
    body = b"entries:\n  a:\n  - version: 1.0.0\n    x: " + b"[" * 100 + b"]" * 100 + b"\n"
    with pytest.raises(InvalidIndex, match="deeper than 32"):
        parse_index(body)


def test_an_index_over_the_node_budget_is_refused() -> None:
    body = ("entries:\n  a:\n" + "  - {version: 1.0.0}\n" * 5000).encode()
    with pytest.raises(InvalidIndex, match="more than 10000 nodes"):
        parse_index(body, IndexLimits(max_nodes=10_000))
    assert len(parse_index(body, IndexLimits(max_nodes=20_000))["a"]) == 5000


def test_reading_stops_at_the_time_limit() -> None:
    body = ("entries:\n  a:\n" + "  - {version: 1.0.0, name: a}\n" * 100_000).encode()
    started = time.monotonic()
    with pytest.raises(InvalidIndex, match=re.escape("longer than 0.05s")):
        parse_index(body, IndexLimits(seconds=0.05))
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"entries: !!python/object:os.system {}\n", "tag"),
        (b"entries: {a: [{version: !!binary aGk=}]}\n", "!!binary"),
        (b"entries: {a: []}\nentries: {b: []}\n", "appears twice"),
    ],
)
def test_what_helm_would_not_read_is_refused(body: bytes, what: str) -> None:
    with pytest.raises(InvalidIndex, match=re.escape(what)):
        parse_index(body)


def test_values_read_as_json_data() -> None:
    body = b"entries:\n  a:\n  - version: 1.0\n    created: 2024-01-01T00:00:00Z\n    x: yes\n"
    assert parse_index(body) == {"a": [{"version": 1.0, "created": "2024-01-01T00:00:00Z", "x": True}]}
