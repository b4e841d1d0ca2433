"""Two AppInstalls may not share one release: the older one holds it (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def release_of(body: Mapping[str, Any]) -> tuple[str, str]:
    """(target namespace, release name) an AppInstall body claims."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    return (
        str(spec.get("targetNamespace") or meta.get("namespace") or ""),
        str(spec.get("releaseName") or meta.get("name") or ""),
    )


def holder(body: Mapping[str, Any], claimants: Iterable[Mapping[str, Any]]) -> str | None:
    """Pure: `namespace/name` of an older, live AppInstall that claims the same release as `body`, if any."""
    me = body.get("metadata") or {}
    mine = (me.get("creationTimestamp", ""), me.get("uid", ""))
    claim = release_of(body)
    for other in claimants:
        om = other.get("metadata") or {}
        if om.get("uid") == me.get("uid") or om.get("deletionTimestamp"):
            continue
        if release_of(other) == claim and (om.get("creationTimestamp", ""), om.get("uid", "")) < mine:
            return f"{om.get('namespace')}/{om.get('name')}"
    return None
