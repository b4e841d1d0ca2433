"""Helm values: merging layers the way Helm does, hashing them, and reading values documents.

Kubemart builds a release's values from several layers (for example an app's defaults, then
values documents from ConfigMaps, then inline values) and hands Helm one merged map. The merge here follows Helm's
own rules for several ``-f`` files rather than pyhelm3's (which concatenates lists when given
several dicts): maps merge key by key, anything else (lists included) is replaced whole, and an
explicit ``null`` survives, because Helm reads ``null`` as "delete this chart default".
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

__all__ = ["InvalidValues", "merge_values", "parse_values_document", "values_hash"]


class InvalidValues(ValueError):
    """A values document that is not valid YAML or not a mapping; the message names its source."""


def merge_values(layers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge values layers, later ones winning, into a new dict; no input is mutated or shared.

    Maps merge recursively; lists and scalars from a later layer replace earlier ones; a ``None``
    in a later layer replaces whatever was there and is kept.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer)
    return merged


def values_hash(*, chart_digest: str, values: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the chart digest and values, independent of key order.

    The encoding is canonical JSON (sorted keys, no whitespace). Values read from YAML may hold
    dates and binary data; those are encoded the way Helm would see them, as strings.
    """
    document = {"chart": chart_digest, "values": _canonical(values)}
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def parse_values_document(text: str, *, source: str) -> dict[str, Any]:
    """Parse one YAML values document; an empty document gives ``{}``.

    ``source`` names where the text came from (e.g. ``ConfigMap demo/settings key values.yaml``)
    and starts the message of the `InvalidValues` raised for invalid YAML or a non-mapping.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidValues(f"{source} is not valid YAML: {_describe_yaml_error(exc)}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidValues(
            f"{source} must be a YAML mapping of value names to values (like 'replicaCount: 2'), "
            f"but it is {_describe_kind(document)}"
        )
    return document


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    # `base` is always a dict this module built, so sharing its untouched values is safe.
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            # YAML allows `1:` or `true:` as keys; Helm sees them as strings, and json cannot sort mixed keys.
            name = key if isinstance(key, str) else json.dumps(_canonical(key))
            if name in out:
                raise ValueError(f"values have two keys that both read as {name!r}")
            out[name] = _canonical(item)
        return out
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_canonical(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"values cannot hold a {type(value).__name__}: {value!r}")


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            return f"{what} (line {mark.line + 1}, column {mark.column + 1})"
        return what
    return str(exc)


def _describe_kind(document: object) -> str:
    match document:
        case bool():
            return f"the boolean {document!r}"
        case int() | float():
            return f"the number {document!r}"
        case str():
            shown = document if len(document) <= 40 else document[:40] + "..."
            return f"the string {shown!r}"
        case list():
            return f"a list of {len(document)} item(s)"
    return f"a {type(document).__name__}"
