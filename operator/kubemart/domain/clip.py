"""Cutting text that came from outside before it goes into a spec, a condition, an Event or a log (pure)."""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]+")
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def one_line(text: str, limit: int) -> str:
    """`text` as one printable line of at most `limit` characters: control characters become spaces."""
    return clip(" ".join(_UNPRINTABLE.sub(" ", text[: limit * 4]).split()), limit)
