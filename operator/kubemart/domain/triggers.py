"""When an object's own watch event asks for a reconcile (pure).

Only a spec change (a new generation), a new reconcile-requested-at annotation, deletion, or
never having been reconciled count. Metadata edits such as Argo CD's tracking annotation do
not, and neither do our own status writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECONCILE_ANNOTATION = "kubemart.io/reconcile-requested-at"


def requested_at(body: Mapping[str, Any]) -> str | None:
    value = (body.get("metadata", {}).get("annotations") or {}).get(RECONCILE_ANNOTATION)
    return str(value) if value is not None else None


def needs_reconcile(body: Mapping[str, Any]) -> bool:
    meta = body.get("metadata", {})
    status = body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return True
    if status.get("observedGeneration") != meta.get("generation"):
        return True
    asked = requested_at(body)
    return asked is not None and asked != status.get("lastHandledReconcileAt")
