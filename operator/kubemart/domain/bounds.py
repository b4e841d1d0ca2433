"""Bounds on JSON-like values from people we do not trust: nesting depth, node count, size (pure).

The API server stores objects nested up to 10,000 levels deep (its JSON decoder's limit), and a
tenant's `spec.values` is free-form, so the operator can be handed a value that anything recursive
(a deep copy, a merge, `json.dumps`, a hash) would choke on or spend seconds in. This module measures
a value with an explicit stack instead of recursion, stops at the first bound it breaks, and says
which bound and where, so a caller can refuse the value before anything recursive touches it.

Size is counted as the length of the value's compact JSON (what helm is given), in UTF-8 bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ValueLimits", "check_values", "cut"]

_PATH_KEYS = 6
"""Keys shown of the path to a value that breaks a bound (then `...`)."""
_KEY_CHARS = 40


@dataclass(frozen=True)
class ValueLimits:
    """The defaults are the operator's (runtime.settings): generous for any real chart's values."""

    max_depth: int = 32
    """Most maps and lists nested in one another, the value itself included ({"a": 1} is 1)."""
    max_nodes: int = 100_000
    """Most maps, lists and scalars in all."""
    max_bytes: int = 1024 * 1024
    """Longest compact JSON encoding."""


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters marked as cut (for messages that quote input)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)] + "..."


def check_values(
    value: Any, *, max_depth: int, max_nodes: int, max_bytes: int, what: str = "spec.values"
) -> str | None:
    """Pure: None when `value` is within the bounds, else a message naming the bound broken and where.

    `what` names the value in the message (e.g. `spec.values`). Cost: one pass, stopping at the
    first bound broken, so at most about `max_nodes` steps whatever the input; no recursion.
    """
    nodes = 0
    size = 0
    # One entry per open map or list: its path key and an iterator over (key, child).
    stack: list[tuple[str | None, Iterator[tuple[str | None, Any]]]] = []
    pending: list[tuple[str | None, Any]] = [(None, value)]
    while pending or stack:
        if pending:
            key, node = pending.pop()
        else:
            item = next(stack[-1][1], None)
            if item is None:
                stack.pop()
                continue
            key, node = item
        nodes += 1
        if nodes > max_nodes:
            return f"{what} holds more than {max_nodes} values (maps, lists and scalars in all); make it smaller, or move data to a ConfigMap"
        if isinstance(node, Mapping):
            size += 2 + max(0, len(node) - 1) + len(node)  # braces, commas, a colon per key
            for k in node:
                size += _text_bytes(k if isinstance(k, str) else str(k))
            children: Iterator[tuple[str | None, Any]] = ((str(k), v) for k, v in node.items())
        elif isinstance(node, list | tuple):
            size += 2 + max(0, len(node) - 1)
            children = ((f"[{i}]", v) for i, v in enumerate(node))
        else:
            scalar = _scalar_bytes(node)
            if scalar is None:
                return f"{what}{_path(stack, key)} is a {type(node).__name__}, which JSON cannot hold"
            size += scalar
            if size > max_bytes:
                return f"{what} is larger than {max_bytes} bytes as JSON; make it smaller, or move data to a ConfigMap"
            continue
        if size > max_bytes:
            return f"{what} is larger than {max_bytes} bytes as JSON; make it smaller, or move data to a ConfigMap"
        if len(stack) + 1 > max_depth:
            return (
                f"{what} is nested more than {max_depth} levels deep (at {what}{_path(stack, key)}); "
                "flatten it"
            )
        stack.append((key, children))
    return None


def _text_bytes(text: str) -> int:
    # Quotes and escapes are close enough for a bound: 2 quotes, UTF-8 length.
    return 2 + (len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass")))


def _scalar_bytes(node: object) -> int | None:
    if node is None or node is True:
        return 4
    if node is False:
        return 5
    if isinstance(node, str):
        return _text_bytes(node)
    if isinstance(node, int):
        return len(str(node)) if abs(node) < 10**18 else _int_bytes(node)
    if isinstance(node, float):
        return len(repr(node)) if math.isfinite(node) else None
    return None


def _int_bytes(node: int) -> int:
    # str() of a huge int is quadratic (and refused past 4,300 digits); its bit length is not.
    return int(node.bit_length() * 0.30103) + 2


def _path(stack: Sequence[tuple[str | None, object]], key: str | None) -> str:
    keys = [k for k, _ in stack if k is not None] + ([key] if key is not None else [])
    shown = [k if k.startswith("[") else "." + cut(k, _KEY_CHARS) for k in keys[:_PATH_KEYS]]
    return "".join(shown) + ("..." if len(keys) > _PATH_KEYS else "")
