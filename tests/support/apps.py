"""Scenario helpers: sources, installs, and waiting on what the operator reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .kube import Objects, ready


def create_source(objects: Objects, name: str, url: str, **spec: object) -> None:
    objects.create(
        "marketsources", {"kind": "MarketSource", "metadata": {"name": name}, "spec": {"url": url, **spec}}
    )


def request_reconcile(objects: Objects, plural: str, name: str, namespace: str | None = None) -> str:
    stamp = datetime.now(UTC).isoformat()
    objects.patch(
        plural, name, {"metadata": {"annotations": {"kubemart.io/reconcile-requested-at": stamp}}}, namespace
    )
    return stamp


def handled(
    objects: Objects, plural: str, name: str, stamp: str, namespace: str | None = None
) -> dict | None:
    obj = objects.get(plural, name, namespace)
    if obj and (obj.get("status") or {}).get("lastHandledReconcileAt") == stamp:
        return obj
    return None


SCHEMA = {
    "type": "object",
    "properties": {
        "replicaCount": {"type": ["integer", "null"], "minimum": 0},
        "message": {"type": "string"},
    },
}


def install(objects: Objects, namespace: str, name: str, **spec: Any) -> None:
    objects.create("appinstalls", {"kind": "AppInstall", "metadata": {"name": name}, "spec": spec}, namespace)


def running(objects: Objects, namespace: str, name: str) -> dict[str, Any] | None:
    obj = objects.get("appinstalls", name, namespace)
    if ready(obj) and obj["status"].get("phase") == "Running":  # type: ignore[index]
        return obj
    return None
