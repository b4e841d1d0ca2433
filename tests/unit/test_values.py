"""Helm values: Helm's merge rules, a stable hash, and safe parsing with messages naming the source."""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pytest

from kubemart.domain.bounds import ValueLimits
from kubemart.domain.values import (
    InvalidValues,
    effective_values,
    merge_values,
    parse_values_document,
    values_hash,
)

SOURCE = "ConfigMap demo/settings key values.yaml"


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        pytest.param([], {}, id="no layers"),
        pytest.param([{"a": 1}], {"a": 1}, id="one layer"),
        pytest.param([{"a": 1}, {"b": 2}], {"a": 1, "b": 2}, id="disjoint keys"),
        pytest.param([{"a": 1}, {"a": 2}, {"a": 3}], {"a": 3}, id="later layer wins"),
        pytest.param(
            [{"image": {"repository": "nginx", "tag": "1.0"}}, {"image": {"tag": "2.0"}}],
            {"image": {"repository": "nginx", "tag": "2.0"}},
            id="maps merge deeply",
        ),
        pytest.param(
            [{"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"d": 3, "e": 4}}}],
            {"a": {"b": {"c": 1, "d": 3, "e": 4}}},
            id="maps merge at every depth",
        ),
        pytest.param(
            [{"args": ["--a", "--b"]}, {"args": ["--c"]}],
            {"args": ["--c"]},
            id="list replaced not concatenated",
        ),
        pytest.param(
            [{"env": [{"name": "A"}]}, {"env": []}],
            {"env": []},
            id="empty list replaces",
        ),
        pytest.param([{"a": {"b": 1}}, {"a": {}}], {"a": {"b": 1}}, id="empty map changes nothing"),
        pytest.param([{"a": {"b": 1}}, {"a": "flat"}], {"a": "flat"}, id="scalar replaces map"),
        pytest.param([{"a": "flat"}, {"a": {"b": 1}}], {"a": {"b": 1}}, id="map replaces scalar"),
        pytest.param([{"a": [1]}, {"a": {"b": 1}}], {"a": {"b": 1}}, id="map replaces list"),
        pytest.param(
            [{"ingress": {"enabled": True, "host": "x"}}, {"ingress": None}],
            {"ingress": None},
            id="null kept to delete a chart default",
        ),
        pytest.param(
            [{"a": {"b": 1, "c": 2}}, {"a": {"b": None}}],
            {"a": {"b": None, "c": 2}},
            id="nested null kept",
        ),
        pytest.param([{"a": None}, {"a": {"b": 1}}], {"a": {"b": 1}}, id="value replaces earlier null"),
        pytest.param([{"a": True}, {"a": False}], {"a": False}, id="false is a value"),
        pytest.param([{"a": 1}, {"a": 0}], {"a": 0}, id="zero is a value"),
    ],
)
def test_merge_values(layers: list[Mapping[str, Any]], expected: dict[str, Any]) -> None:
    assert merge_values(layers) == expected


def test_merge_values_never_mutates_or_shares_its_inputs() -> None:
    base = {"image": {"tag": "1.0", "pullSecrets": ["a"]}, "args": ["x"]}
    override = {"image": {"tag": "2.0"}, "extra": {"list": [1, 2]}}
    before = copy.deepcopy((base, override))

    merged = merge_values([base, override])
    merged["image"]["pullSecrets"].append("b")
    merged["extra"]["list"].append(3)
    merged["args"].append("y")

    assert (base, override) == before


def test_merge_values_accepts_any_mapping_and_returns_dicts() -> None:
    class Frozen(Mapping[str, Any]):
        def __init__(self, data: dict[str, Any]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> Any:
            return self._data[key]

        def __iter__(self) -> Any:
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    merged = merge_values([Frozen({"a": {"b": 1}}), Frozen({"a": Frozen({"c": 2})})])
    assert merged == {"a": {"b": 1, "c": 2}}
    assert type(merged["a"]) is dict


DIGEST = "sha256:" + "ab" * 32


def test_values_hash_format() -> None:
    digest = values_hash(chart_digest=DIGEST, values={"a": 1})
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert int(digest.removeprefix("sha256:"), 16) >= 0


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param({"a": 1, "b": 2}, {"b": 2, "a": 1}, id="key order"),
        pytest.param(
            {"x": {"p": 1, "q": [{"m": 1, "n": 2}]}},
            {"x": {"q": [{"n": 2, "m": 1}], "p": 1}},
            id="nested key order",
        ),
        pytest.param({"a": (1, 2)}, {"a": [1, 2]}, id="tuple reads as list"),
        pytest.param({"d": datetime.date(2024, 1, 2)}, {"d": "2024-01-02"}, id="yaml date reads as string"),
    ],
)
def test_values_hash_is_stable(left: Mapping[str, Any], right: Mapping[str, Any]) -> None:
    assert values_hash(chart_digest=DIGEST, values=left) == values_hash(chart_digest=DIGEST, values=right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param({"a": 1}, {"a": 2}, id="value"),
        pytest.param({"a": 1}, {"b": 1}, id="key"),
        pytest.param({"a": [1, 2]}, {"a": [2, 1]}, id="list order"),
        pytest.param({"a": 1}, {"a": "1"}, id="number and string"),
        pytest.param({"a": True}, {"a": 1}, id="bool and number"),
        pytest.param({"a": None}, {}, id="null and absent"),
        pytest.param({"a": {}}, {"a": None}, id="empty map and null"),
        pytest.param({"a": {"b": 1}}, {"a.b": 1}, id="nesting and dotted key"),
    ],
)
def test_values_hash_is_sensitive_to_values(left: Mapping[str, Any], right: Mapping[str, Any]) -> None:
    assert values_hash(chart_digest=DIGEST, values=left) != values_hash(chart_digest=DIGEST, values=right)


def test_values_hash_is_sensitive_to_the_chart() -> None:
    other = "sha256:" + "cd" * 32
    assert values_hash(chart_digest=DIGEST, values={}) != values_hash(chart_digest=other, values={})


def test_values_hash_is_sha256_of_canonical_json() -> None:
    # Pinned so a change to the encoding, which would look like a change to every app, cannot slip by.
    canonical = '{"chart":"sha256:00","values":{"a":null,"b":[1,"é"]}}'.encode()
    expected = "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert expected == "sha256:284b75b9534ba073070cc13ba9bfaa93148d388c4831a3648319e127f910139b"
    assert values_hash(chart_digest="sha256:00", values={"b": [1, "é"], "a": None}) == expected


def test_values_hash_handles_yaml_non_string_keys() -> None:
    values = parse_values_document("1: one\ntrue: yes\nname: x\n", source=SOURCE)
    assert values_hash(chart_digest=DIGEST, values=values).startswith("sha256:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", {}, id="empty document"),
        pytest.param("   \n\n", {}, id="blank document"),
        pytest.param("# just a comment\n", {}, id="comment only"),
        pytest.param("~\n", {}, id="explicit null document"),
        pytest.param("replicaCount: 2\n", {"replicaCount": 2}, id="scalar"),
        pytest.param(
            "image:\n  repository: nginx\n  tag: '1.25'\nargs: [a, b]\n",
            {"image": {"repository": "nginx", "tag": "1.25"}, "args": ["a", "b"]},
            id="nested",
        ),
        pytest.param("ingress: null\n", {"ingress": None}, id="null value kept"),
        pytest.param("---\na: 1\n", {"a": 1}, id="leading document marker"),
    ],
)
def test_parse_values_document(text: str, expected: dict[str, Any]) -> None:
    assert parse_values_document(text, source=SOURCE) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a: [1\n", "is not valid YAML", id="unclosed list"),
        pytest.param(
            "a: 1\n b: 2\n", "mapping values are not allowed in this context (line 2", id="bad indentation"
        ),
        pytest.param(
            "a: 1\n---\nb: 2\n", "holds 2 YAML documents where one was expected", id="two documents"
        ),
        pytest.param(
            "a: !!python/object/apply:os.system [ls]\n",
            "the tag !!python/object/apply:os.system is not allowed",
            id="unsafe tag",
        ),
        pytest.param("- a\n- b\n", "must be a YAML mapping", id="list"),
        pytest.param("- a\n- b\n", "it is a list of 2 item(s)", id="list described"),
        pytest.param("just text\n", "it is the string 'just text'", id="string"),
        pytest.param("42\n", "it is the number 42", id="number"),
        pytest.param("true\n", "it is the boolean True", id="boolean"),
    ],
)
def test_parse_values_document_rejects_with_source_and_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidValues) as caught:
        parse_values_document(text, source=SOURCE)
    assert str(caught.value).startswith(SOURCE)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


# --- issue #9: values that are valid YAML but not what Helm can take, and inputs that are too much ---------


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _bomb(levels: int = 9, width: int = 9) -> str:
    """A few hundred bytes of nested aliases that expand to width**levels strings."""
    lines = ["a: &a [" + ",".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "buildDate: 2024-01-01\n", {"buildDate": "2024-01-01"}, id="unquoted date stays a string"
        ),
        pytest.param(
            "at: 2024-01-01 10:00:00\n", {"at": "2024-01-01 10:00:00"}, id="timestamp stays a string"
        ),
        pytest.param(
            "1: one\ntrue: yes\n", {"1": "one", "true": True}, id="non-string keys read as Helm does"
        ),
    ],
)
def test_values_read_as_helm_reads_them(text: str, expected: dict[str, Any]) -> None:
    values = parse_values_document(text, source=SOURCE)
    assert values == expected
    json.dumps(values)  # helm is given JSON


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param(
            "cert: !!binary aGVsbG8=\n", ["!!binary values are not allowed", "(line 1)"], id="binary"
        ),
        pytest.param("a: 1\nhosts: !!set {a, b}\n", ["!!set", "(line 2)"], id="set"),
        pytest.param("x: 1\n1: a\n'1': b\n", ["the key '1' appears twice", "(line 3)"], id="keys 1 and '1'"),
        pytest.param("a: 1\na: 2\n", ["the key 'a' appears twice"], id="duplicate key"),
        pytest.param(
            "a: " + "[" * 40 + "]" * 40 + "\n", ["nesting is deeper than 32 levels"], id="deep nesting"
        ),
        pytest.param(_bomb(), ["expands to more than", "aliases"], id="alias bomb"),
    ],
)
def test_values_helm_cannot_take_are_refused_naming_source_and_line(text: str, words: list[str]) -> None:
    with pytest.raises(InvalidValues) as caught:
        effective_values([(SOURCE, text)], None, limits=ValueLimits())
    message = str(caught.value)
    assert message.startswith(SOURCE)
    for word in words:
        assert word in message, message


def test_effective_values_merge_documents_in_order_then_inline() -> None:
    docs = [("ConfigMap a key v", "x: 1\ny: {p: 1}\n"), ("Secret b key v", "y: {q: 2}\nz: 3\n")]
    values = effective_values(docs, {"z": 4}, limits=ValueLimits())
    assert values == {"x": 1, "y": {"p": 1, "q": 2}, "z": 4}


@pytest.mark.parametrize(
    ("docs", "inline", "words"),
    [
        pytest.param([], {"a": _deep(40)}, ["spec.values is nested more than 32 levels"], id="deep inline"),
        pytest.param([], {"s": "x" * 2000}, ["spec.values is larger than 1000 bytes"], id="large inline"),
        pytest.param(
            [
                ("ConfigMap a key v", "a: " + "x" * 600 + "\n"),
                ("ConfigMap b key v", "b: " + "y" * 600 + "\n"),
            ],
            None,
            [
                "the merged values document (source values, spec.valuesFrom, then spec.values) is larger than 1000 bytes"
            ],
            id="merged too large",
        ),
    ],
)
def test_values_beyond_the_bounds_are_refused(
    docs: list[tuple[str, str]], inline: dict[str, Any] | None, words: list[str]
) -> None:
    limits = ValueLimits(max_depth=32, max_nodes=1000, max_bytes=1000)
    with pytest.raises(InvalidValues) as caught:
        effective_values(docs, inline, limits=limits)
    for word in words:
        assert word in str(caught.value), str(caught.value)
