"""Kubernetes Events on our objects, posted through kopf's event poster.

kopf.event is used rather than kopf.info/warn, which are filtered by the posting level that
keeps kopf's own log lines out of Events.
"""

from __future__ import annotations

from typing import Any

import kopf


def normal(body: dict[str, Any], reason: str, message: str) -> None:
    kopf.event(_obj(body), type="Normal", reason=reason, message=message)


def warning(body: dict[str, Any], reason: str, message: str) -> None:
    kopf.event(_obj(body), type="Warning", reason=reason, message=message)


def _obj(body: dict[str, Any]) -> Any:
    # kopf walks plain dicts fine; its annotation names only its own Body class.
    return body
