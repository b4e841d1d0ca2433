"""Helm values: merging layers the way Helm does, hashing them, and reading values documents.

Kubemart builds a release's values from several layers (for example an app's defaults, then
values documents from ConfigMaps, then inline values) and hands Helm one merged map. The merge here follows Helm's
own rules for several ``-f`` files rather than pyhelm3's (which concatenates lists when given
several dicts): maps merge key by key, anything else (lists included) is replaced whole, and an
explicit ``null`` survives, because Helm reads ``null`` as "delete this chart default".

Values documents come from tenants' ConfigMaps and Secrets, so they are read with
`domain.safe_yaml` (aliases counted expanded, depth and time bounded; dates stay strings as Helm
sees them; ``!!binary``, ``!!set`` and duplicate keys refused), and what Helm is given is bounded
(`domain.bounds`). Reading is the heavy part: `effective_values` does all of it, and is meant to
run off the event loop.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from kubemart.domain import safe_yaml
from kubemart.domain.bounds import ValueLimits, check_values

__all__ = [
    "InvalidValues",
    "effective_values",
    "merge_values",
    "parse_values_document",
    "values_hash",
]


class InvalidValues(ValueError):
    """Values that are not valid YAML, not a mapping, or beyond a bound; the message names their source."""


def effective_values(
    documents: Sequence[tuple[str, str]],
    inline: Mapping[str, Any] | None,
    *,
    limits: ValueLimits,
    seconds: float = 5.0,
    defaults: Mapping[str, Any] | None = None,
    defaults_from: str = "the MarketSource's spec.values",
) -> dict[str, Any]:
    """Pure, but heavy (run it off the event loop): the values Helm is given.

    `documents` are (source, YAML text) pairs, e.g. ``("ConfigMap team-a/settings key values.yaml",
    text)``, merged in order; `inline` (``spec.values``) wins last. Each document is read within
    `limits` and `seconds`; the merged result must be within `limits` too. `defaults` (a MarketSource's
    spec.values) are merged first, under everything else. Raises `InvalidValues`.
    """
    layers: list[Mapping[str, Any]] = []
    if defaults:
        # The source's defaults (e.g. what Olares injects) come first: every layer of the app's own wins.
        refused = _check(defaults, limits, defaults_from)
        if refused is not None:
            raise InvalidValues(refused)
        layers.append(defaults)
    layers += [
        parse_values_document(text, source=source, limits=_yaml_limits(text, limits, seconds))
        for source, text in documents
    ]
    if inline:
        refused = _check(inline, limits, "spec.values")
        if refused is not None:
            raise InvalidValues(refused)
        layers.append(dict(inline))
    merged = merge_values(layers)
    refused = _check(
        merged, limits, "the merged values document (source values, spec.valuesFrom, then spec.values)"
    )
    if refused is not None:
        raise InvalidValues(refused)
    return merged


def _yaml_limits(text: str, limits: ValueLimits, seconds: float) -> safe_yaml.Limits:
    # About one node per byte of text at most (safe_yaml's own rule), so that aliases cannot make a
    # document bigger than it looks; and never more than the merged values may hold.
    nodes = min(limits.max_nodes, max(10_000, len(text)))
    return safe_yaml.Limits(max_depth=limits.max_depth, max_nodes=nodes, seconds=seconds)


def _check(values: Any, limits: ValueLimits, what: str) -> str | None:
    return check_values(
        values, max_depth=limits.max_depth, max_nodes=limits.max_nodes, max_bytes=limits.max_bytes, what=what
    )


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


def parse_values_document(
    text: str, *, source: str, limits: safe_yaml.Limits | None = None
) -> dict[str, Any]:
    """Parse one YAML values document; an empty document gives ``{}``.

    ``source`` names where the text came from (e.g. ``ConfigMap demo/settings key values.yaml``)
    and starts the message of the `InvalidValues` raised for invalid or unsafe YAML (with its line)
    or a non-mapping. What is returned is what Helm would read: JSON-compatible data.
    """
    try:
        document = safe_yaml.load(text, limits=limits, source=source)
    except safe_yaml.UnsafeYAML as exc:
        raise InvalidValues(str(exc)) from None
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
