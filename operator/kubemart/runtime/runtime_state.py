"""The runtime view: one JSON snapshot of sources, apps, payments and the operator itself.

Pure: built from the bodies the reconcile loops already hold (so a request costs no API call) and
from counts the operator's parts report. What goes out is chosen field by field, never a copy of a
spec or status: values, receipts, checkout sessions and credentials in URLs stay out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Body = Mapping[str, Any]

RECENT_CORRECTIONS = 20
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


@dataclass(frozen=True)
class Filters:
    """Query filters; empty means all. Sources are cluster-scoped and always listed."""

    namespace: str = ""
    app: str = ""
    """The catalog app (spec.app) or the object's name."""
    phase: str = ""
    """Of apps and of payments; case does not matter."""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        return cls(
            namespace=(query.get("namespace") or "").strip(),
            app=(query.get("app") or "").strip(),
            phase=(query.get("phase") or "").strip(),
        )

    def as_dict(self) -> dict[str, str]:
        return {
            k: v for k, v in (("namespace", self.namespace), ("app", self.app), ("phase", self.phase)) if v
        }

    def keeps(self, namespace: str, name: str, app: str, phase: str) -> bool:
        return (
            (not self.namespace or namespace == self.namespace)
            and (not self.app or self.app in (app, name))
            and (not self.phase or phase.casefold() == self.phase.casefold())
        )


@dataclass(frozen=True)
class Components:
    """What the operator's parts report about themselves when the snapshot is taken."""

    version: str
    started_at: datetime
    controllers: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """By controller name: objects, queued, inFlight (runtime.controller.Controller.stats)."""
    helm_slots_in_use: int = 0
    helm_slots_max: int = 0
    drift_watches_alive: int = 0
    drift_watches_total: int = 0
    webhook_server: bool = False


def redact(text: str | None) -> str | None:
    """Credentials written into a URL (https://user:password@host) are never shown."""
    return _USERINFO.sub(r"\1***@", text) if text else text


def _conditions(body: Body) -> dict[str, Mapping[str, Any]]:
    return {
        str(c.get("type")): c
        for c in (body.get("status") or {}).get("conditions") or []
        if isinstance(c, Mapping)
    }


def _condition_view(c: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "status": c.get("status"),
        "reason": c.get("reason"),
        "message": redact(c.get("message")),
        "lastTransitionTime": c.get("lastTransitionTime"),
    }


def health_of(body: Body) -> str:
    """Pure: Healthy, Progressing, Degraded, Stalled or Suspended, as kstatus would read the app."""
    status = body.get("status") or {}
    conds = _conditions(body)
    if status.get("phase") == "Suspended" or (body.get("spec") or {}).get("suspend"):
        return "Suspended"
    if (conds.get("Stalled") or {}).get("status") == "True":
        return "Stalled"
    ready = conds.get("Ready") or {}
    generation = (body.get("metadata") or {}).get("generation")
    current = ready.get("observedGeneration") in (None, generation)
    if ready.get("status") == "True" and current:
        return "Healthy"
    working = (conds.get("Reconciling") or {}).get("status") == "True"
    running = (status.get("operation") or {}).get("phase") == "Running"
    if working or running or not current or ready.get("status") in (None, "Unknown"):
        return "Progressing"
    return "Degraded"


def _meta(body: Body) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def source_view(body: Body) -> dict[str, Any]:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    ready = _conditions(body).get("Ready")
    return {
        "name": _meta(body)[1],
        "type": spec.get("type") or "helm",
        "url": redact(spec.get("url")),
        "suspended": bool(spec.get("suspend")),
        "ready": (ready or {}).get("status") == "True",
        "reason": (ready or {}).get("reason"),
        "message": redact((ready or {}).get("message")),
        "revision": status.get("revision"),
        "lastSyncTime": status.get("lastSyncTime"),
        "appCount": status.get("appCount") or 0,
    }


def app_view(body: Body) -> dict[str, Any]:
    namespace, name = _meta(body)
    spec, status = body.get("spec") or {}, body.get("status") or {}
    conds = _conditions(body)
    operation = status.get("operation") or None
    corrections = status.get("corrections") or None
    return {
        "namespace": namespace,
        "name": name,
        "source": spec.get("source"),
        "app": spec.get("app"),
        "phase": status.get("phase") or "Pending",
        "health": health_of(body),
        "requestedVersion": spec.get("version"),
        "installedVersion": status.get("installedVersion"),
        "releaseRevision": status.get("releaseRevision"),
        "ready": _condition_view(conds.get("Ready")),
        "stalled": _condition_view(conds.get("Stalled")),
        "reconciling": _condition_view(conds.get("Reconciling")),
        "operation": None
        if not operation
        else {
            "type": operation.get("type"),
            "phase": operation.get("phase"),
            "startedAt": operation.get("startedAt"),
            "attempt": operation.get("attempt"),
            "message": redact(operation.get("message")),
        },
        "corrections": None
        if not corrections
        else {
            "count": corrections.get("count") or 0,
            "lastTime": corrections.get("lastTime"),
            "lastSummary": redact(corrections.get("lastSummary")),
        },
        "entrances": [
            {"name": e.get("name"), "url": redact(e.get("url"))}
            for e in status.get("entrances") or []
            if isinstance(e, Mapping)
        ],
    }


def payment_view(body: Body) -> dict[str, Any]:
    """Phase, app and amount only: no checkout URL, session or receipt."""
    namespace, name = _meta(body)
    spec, status = body.get("spec") or {}, body.get("status") or {}
    quote = status.get("quote") or {}
    return {
        "namespace": namespace,
        "name": name,
        "source": spec.get("source"),
        "app": spec.get("app"),
        "phase": status.get("phase") or "Pending",
        "amount": quote.get("amount"),
        "currency": quote.get("currency"),
    }


def _by_phase(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(i["phase"]) for i in items).items()))


def _latest(times: Iterable[str | None]) -> str | None:
    # RFC 3339 times in UTC, as the API server writes them, sort as strings.
    present = [t for t in times if t]
    return max(present) if present else None


def snapshot(
    *,
    sources: Iterable[Body],
    apps: Iterable[Body],
    payments: Iterable[Body],
    components: Components,
    filters: Filters,
    now: datetime,
) -> dict[str, Any]:
    """Pure: the runtime view, filtered, with its summary counted over what the filters kept."""
    source_rows = sorted((source_view(b) for b in sources), key=lambda s: str(s["name"]))
    app_rows = sorted(
        (
            a
            for a in map(app_view, apps)
            if filters.keeps(a["namespace"], a["name"], str(a["app"] or ""), a["phase"])
        ),
        key=lambda a: (a["namespace"], a["name"]),
    )
    payment_rows = sorted(
        (
            p
            for p in map(payment_view, payments)
            if filters.keeps(p["namespace"], p["name"], str(p["app"] or ""), p["phase"])
        ),
        key=lambda p: (p["namespace"], p["name"]),
    )
    namespaces: dict[str, list[dict[str, Any]]] = {}
    for a in app_rows:
        namespaces.setdefault(a["namespace"], []).append(a)
    corrected = sorted(
        (a for a in app_rows if a["corrections"] and a["corrections"]["count"]),
        key=lambda a: str(a["corrections"]["lastTime"] or ""),
        reverse=True,
    )
    in_flight = [a for a in app_rows if a["operation"] and a["operation"]["phase"] == "Running"]
    sources_ready = sum(1 for s in source_rows if s["ready"])
    controllers = {name: dict(counts) for name, counts in sorted(components.controllers.items())}
    return {
        "generatedAt": now.isoformat(),
        "filters": filters.as_dict(),
        "summary": {
            "apps": {
                "total": len(app_rows),
                "byPhase": _by_phase(app_rows),
                "byHealth": dict(sorted(Counter(a["health"] for a in app_rows).items())),
            },
            "sources": {
                "total": len(source_rows),
                "ready": sources_ready,
                "notReady": len(source_rows) - sources_ready,
            },
            "catalogSize": sum(int(s["appCount"]) for s in source_rows),
            "payments": {"total": len(payment_rows), "byPhase": _by_phase(payment_rows)},
            "operationsInFlight": len(in_flight),
            "corrections": sum(a["corrections"]["count"] for a in corrected),
        },
        "sources": source_rows,
        "namespaces": {
            ns: {"apps": len(rows), "byPhase": _by_phase(rows)} for ns, rows in sorted(namespaces.items())
        },
        "apps": app_rows,
        "payments": payment_rows,
        "corrections": [
            {
                "namespace": a["namespace"],
                "name": a["name"],
                "app": a["app"],
                **a["corrections"],
            }
            for a in corrected[:RECENT_CORRECTIONS]
        ],
        "operator": {
            "version": components.version,
            "startedAt": components.started_at.isoformat(),
            "uptimeSeconds": max(0, int((now - components.started_at).total_seconds())),
            "controllers": controllers,
            "helm": {"slotsInUse": components.helm_slots_in_use, "slotsMax": components.helm_slots_max},
            "driftWatches": {
                "alive": components.drift_watches_alive,
                "total": components.drift_watches_total,
            },
            "webhookServer": {"running": components.webhook_server},
            "catalogSync": {
                "sources": len(source_rows),
                "ready": sources_ready,
                "syncing": (controllers.get("marketsource") or {}).get("inFlight", 0),
                "lastSyncTime": _latest(s["lastSyncTime"] for s in source_rows),
            },
        },
    }
