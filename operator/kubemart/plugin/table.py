"""Output the way kubectl prints it: aligned columns under upper-case headers, ages like ``5m30s``,
and ``-o yaml|json`` documents (a ``List`` when there are several objects)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

__all__ = ["NONE", "as_document", "human_age", "parse_time", "render_table"]

NONE = "<none>"
# kubectl's printer pads columns with three spaces.
_GAP = "   "


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Pure: headers (upper-cased) and rows as aligned columns; the last column is not padded."""
    cells = [[h.upper() for h in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [text.ljust(widths[i]) for i, text in enumerate(row[:-1])] + [row[-1]]
        lines.append(_GAP.join(padded).rstrip())
    return "\n".join(lines)


def _cell(text: str) -> str:
    # A newline inside a cell would break the columns.
    return " ".join(text.split()) if "\n" in text else text


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp as the API server writes it, or None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def human_age(since: datetime | None, now: datetime) -> str:
    """Pure: how long ago `since` was, as kubectl's AGE column says it (``HumanDuration``)."""
    if since is None:
        return NONE
    seconds = int((now - since).total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m" if seconds % 60 == 0 else f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d" if hours % 24 == 0 else f"{days}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years, rest = divmod(days, 365)
    if hours < 24 * 365 * 8 and rest:
        return f"{years}y{rest}d"
    return f"{years}y"


def as_document(items: Sequence[dict[str, Any]] | dict[str, Any], output: str) -> str:
    """Pure: one object, or several as a kubectl-style ``List``, in `output` (yaml or json)."""
    if isinstance(items, dict):
        doc = _shown(items)
    else:
        doc = {"apiVersion": "v1", "kind": "List", "items": [_shown(i) for i in items]}
    if output == "json":
        return json.dumps(doc, indent=4, ensure_ascii=False)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).rstrip("\n")


def _shown(obj: dict[str, Any]) -> dict[str, Any]:
    # kubectl hides managedFields unless asked (--show-managed-fields); they are noise to a person.
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
