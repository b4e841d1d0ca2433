"""JSON from outside (gateways, webhook callers, receipt Secrets), read only within bounds (pure).

Python's json module recurses once per nesting level: a 30,000-deep body raises RecursionError
(a traceback, not an answer). pydantic-core's parser (Rust, already a dependency) stops at 200
levels with a ValueError instead; the tighter bound each message allows is then checked on the
parsed value without recursion, and anything larger or deeper is refused with a sentence saying so.
"""

from __future__ import annotations

from typing import Any

import pydantic_core

MAX_BYTES = 64 * 1024
MAX_DEPTH = 16


class InvalidJSON(ValueError):
    """The text is not JSON within the bounds; the message says which bound or what is wrong."""


def depth_of(value: Any, *, stop_after: int | None = None) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (level by level; stops past `stop_after`)."""
    depth = 0
    level = [value]
    while True:
        containers = [n for n in level if isinstance(n, dict | list)]
        if not containers:
            return depth
        depth += 1
        if stop_after is not None and depth > stop_after:
            return depth
        level = [c for n in containers for c in (n.values() if isinstance(n, dict) else n)]


def loads(data: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `data`, or InvalidJSON (larger than `max_bytes`, deeper than `max_depth`, not JSON)."""
    if len(data) > max_bytes:
        raise InvalidJSON(f"the body is larger than {max_bytes} bytes")
    try:
        value = pydantic_core.from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise InvalidJSON(f"the body is nested deeper than {max_depth} levels") from None
        raise InvalidJSON("the body is not JSON") from None
    if depth_of(value, stop_after=max_depth) > max_depth:
        raise InvalidJSON(f"the body is nested deeper than {max_depth} levels")
    return value
