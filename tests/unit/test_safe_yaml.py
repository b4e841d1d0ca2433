"""domain.safe_yaml: untrusted YAML to JSON-compatible data, with bounds."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from kubemart.domain.safe_yaml import Limits, UnsafeYAML, load, load_all


def _laughs(levels: int, width: int = 9) -> str:
    lines = ["a: &a [" + ",".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_plain_documents_read_as_json_data() -> None:
    doc = load("a: 0755\nb: yes\nc: ~\nd: 1.5\ne: '3'\nf: [1, two]\ng: {h: i}\n")
    assert doc == {"a": 493, "b": True, "c": None, "d": 1.5, "e": "3", "f": [1, "two"], "g": {"h": "i"}}
    json.dumps(doc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("when: 2024-01-01\n", {"when": "2024-01-01"}, id="date stays a string, as for helm"),
        pytest.param("at: 2024-01-01T10:00:00Z\n", {"at": "2024-01-01T10:00:00Z"}, id="timestamp string"),
        pytest.param(
            "1: one\ntrue: yes\n~: nothing\n", {"1": "one", "true": True, "null": "nothing"}, id="keys"
        ),
        pytest.param("", None, id="empty"),
        pytest.param(
            "base: &b {x: 1, y: 2}\nz:\n  <<: *b\n  y: 3\n",
            {"base": {"x": 1, "y": 2}, "z": {"x": 1, "y": 3}},
            id="merge key",
        ),
        pytest.param("a: &x 5\nb: *x\n", {"a": 5, "b": 5}, id="scalar alias"),
    ],
)
def test_yaml_reads_as_helm_sees_it(text: str, expected: object) -> None:
    assert load(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "a: 1\nb: 2\na: 3\n", "the key 'a' appears twice in one mapping (line 3)", id="duplicate key"
        ),
        pytest.param("1: a\n'1': b\n", "the key '1' appears twice", id="duplicate after string form"),
        pytest.param("b: !!binary aGVsbG8=\n", "!!binary values are not allowed", id="binary"),
        pytest.param("s: !!set {a, b}\n", "the tag !!set is not allowed", id="set"),
        pytest.param("o: !!omap [a: 1]\n", "the tag !!omap is not allowed", id="omap"),
        pytest.param("x: !!python/object:os.system ls\n", "is not allowed", id="python tag"),
        pytest.param("x: !custom v\n", "the tag !custom is not allowed", id="local tag"),
        pytest.param("a: .inf\n", "not a finite number", id="infinity"),
        pytest.param("a: .nan\n", "not a finite number", id="nan"),
        pytest.param("a: &a [*a]\n", "refers to a node that contains it", id="recursive alias"),
        pytest.param("a: *nothing\n", "names no anchor", id="undefined alias"),
        pytest.param("? [a]\n: b\n", "keys must be plain scalars", id="complex key"),
        pytest.param("a: [1\n", "is not valid YAML", id="syntax error"),
        pytest.param("x: " + "[" * 70 + "]" * 70, "deeper than 64 levels", id="deep"),
        pytest.param("z:\n  <<: 5\n", "merge key must be given a mapping", id="bad merge"),
    ],
)
def test_refused_with_a_message_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(UnsafeYAML, match=None) as err:
        load(text, source="ConfigMap ns/cm key values.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("ConfigMap ns/cm key values.yaml")


def test_billion_laughs_refused_before_it_expands() -> None:
    text = _laughs(9)  # 9**9 = 387 million strings once expanded, in about 300 bytes
    assert len(text) < 400
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeYAML, match="expands to more than"):
            load(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, "nothing was expanded"


def test_aliases_within_budget_are_expanded_copies_of_the_same_data() -> None:
    doc = load(_laughs(2, width=3))
    assert doc == {"a": ["lol"] * 3, "b": [["lol"] * 3] * 3}


def test_alias_depth_counts_expanded() -> None:
    nested = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    with pytest.raises(UnsafeYAML, match="aliases expanded"):
        load(nested)


def test_node_budget_and_alias_count_are_settable() -> None:
    with pytest.raises(UnsafeYAML, match="more than 5 nodes"):
        load("[1, 2, 3, 4, 5, 6]", limits=Limits(max_nodes=5))
    with pytest.raises(UnsafeYAML, match="more than 2 aliases"):
        load("a: &a 1\nb: [*a, *a, *a]\n", limits=Limits(max_aliases=2))


def test_time_budget() -> None:
    text = "\n".join(f"k{i}: [{', '.join(str(j) for j in range(50))}]" for i in range(20_000))
    with pytest.raises(UnsafeYAML, match="took longer than"):
        load(text, limits=Limits(seconds=0.0))


def test_one_document_expected() -> None:
    with pytest.raises(UnsafeYAML, match="holds 2 YAML documents"):
        load("a: 1\n---\nb: 2\n")
    assert list(load_all("a: 1\n---\nb: 2\n")) == [{"a": 1}, {"b": 2}]
