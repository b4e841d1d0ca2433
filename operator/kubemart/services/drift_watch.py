"""Watches the objects Helm manages and wakes the app that owns one when it changes.

Helm labels every object it creates `app.kubernetes.io/managed-by: Helm` and annotates it with
its release's name and namespace; a server-side label selector keeps the watches to those. A
change, a deletion, or a workload's status moving wakes the owning AppInstall within seconds,
and its reconcile decides whether that is drift, a health change, or nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from lightkube.core.exceptions import ApiError

from kubemart.adapters.kube import Kube
from kubemart.runtime.controller import backoff

log = logging.getLogger("kubemart.drift")

WATCHED_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("networking.k8s.io/v1", "Ingress"),
)
MANAGED = {"app.kubernetes.io/managed-by": "Helm"}
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"

OnChange = Callable[[str, str], None]
"""Called with (release namespace, release name)."""


class DriftWatcher:
    def __init__(self, kube: Kube, on_change: OnChange, *, namespaces: list[str] | None = None) -> None:
        self.kube = kube
        self.on_change = on_change
        self.namespaces = namespaces or [None]  # type: ignore[list-item]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for api_version, kind in WATCHED_KINDS:
            res = self.kube.resource_for(api_version, kind)
            if res is None:
                continue
            for ns in self.namespaces:
                self._tasks.append(
                    asyncio.create_task(self._follow(res, kind, ns), name=f"drift-watch:{kind}:{ns}")
                )

    async def _follow(self, res: Any, kind: str, namespace: str | None) -> None:
        failures = 0
        api: Any = self.kube.client
        while True:
            try:
                # Start after what exists (each app checks its objects when the operator starts): from the
                # newest object listed, so that the watch does not replay every object as ADDED.
                newest = 0
                async for obj in api.list(res, namespace=namespace or "*", labels=MANAGED, chunk_size=500):
                    newest = max(newest, int(obj.metadata.resourceVersion or 0))
                async for _event, obj in api.watch(
                    res,
                    namespace=namespace or "*",
                    labels=MANAGED,
                    resource_version=str(newest) if newest else None,
                ):
                    failures = 0
                    annotations = obj.metadata.annotations or {}
                    release, release_ns = annotations.get(RELEASE_NAME), annotations.get(RELEASE_NAMESPACE)
                    if release and release_ns:
                        self.on_change(release_ns, release)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server went away or the watch expired: start again
                failures += 1
                delay = backoff(failures, base=1.0, cap=30.0)
                level = (
                    logging.DEBUG if isinstance(exc, ApiError) and exc.status.code == 410 else logging.WARNING
                )
                log.log(level, "watch of %s ended (%s); again in %.0fs", kind, exc, delay)
                await asyncio.sleep(delay)

    def alive(self) -> tuple[int, int]:
        """(watches running, watches started), for the runtime view."""
        return sum(1 for t in self._tasks if not t.done()), len(self._tasks)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
