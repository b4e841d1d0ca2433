"""Kubernetes Events on our objects: what a person following an app wants to know.

Posted in the background, one attempt each: an Event is a notice, never worth blocking or
retrying a reconcile for (kopf's own poster retries a refused Event for a minute, which is
noise when the namespace is being deleted).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from lightkube.resources.core_v1 import Event

from kubemart.adapters.kube import Kube, KubeError
from kubemart.runtime import logs

log = logging.getLogger("kubemart.events")


class EventRecorder:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._pending: set[asyncio.Task[None]] = set()

    def normal(self, body: dict[str, Any], reason: str, message: str) -> None:
        self._post(body, "Normal", reason, message)

    def warning(self, body: dict[str, Any], reason: str, message: str) -> None:
        self._post(body, "Warning", reason, message)

    def _post(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        task = asyncio.create_task(self._send(body, type_, reason, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = body.get("metadata", {})
        # Events of cluster-scoped objects live in `default`, as kubectl describe expects.
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:12]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "kubemart"},
            "reportingComponent": "kubemart.io/operator",
            "reportingInstance": "kubemart",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.create(Event, event, namespace=namespace)
        except KubeError as err:
            log.debug(
                "event %s on %s/%s not posted: %s",
                reason,
                namespace,
                meta.get("name"),
                err.message,
                extra=logs.ref_of(body),
            )

    async def close(self) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
