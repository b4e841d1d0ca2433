"""Kubernetes Events on our objects: what a person following an app wants to know.

Posted in the background, one attempt each: an Event is a notice, never worth blocking or
retrying a reconcile for (kopf's own poster retries a refused Event for a minute, which is
noise when the namespace is being deleted).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lightkube.resources.core_v1 import Event

from kubemart.adapters.kube import Kube, KubeError
from kubemart.domain.notify import Notice
from kubemart.runtime import logs

log = logging.getLogger("kubemart.events")


class EventRecorder:
    def __init__(self, kube: Kube, *, notify: Callable[[Notice], None] | None = None) -> None:
        self.kube = kube
        self.notify = notify
        """Told of every Event as it is posted, in order (services.notify queues it for sinks)."""
        self._pending: set[asyncio.Task[None]] = set()

    def normal(self, body: dict[str, Any], reason: str, message: str) -> None:
        self._post(body, "Normal", reason, message)

    def warning(self, body: dict[str, Any], reason: str, message: str) -> None:
        self._post(body, "Warning", reason, message)

    def _post(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        # One id for the Event and its notifications: receivers dedupe retries by it.
        uid, when = uuid.uuid4().hex, datetime.now(UTC)
        if self.notify is not None:
            meta = body.get("metadata", {})
            notice = Notice(
                id=uid,
                time=when,
                kind=str(body.get("kind") or ""),
                namespace=str(meta.get("namespace") or ""),
                name=str(meta.get("name") or ""),
                reason=reason,
                type=type_,
                message=message[:1024],
            )
            try:
                self.notify(notice)
            except Exception:  # a notification is never worth failing the reconcile that posted it
                log.exception(
                    "event %s on %s/%s not queued for notification", reason, notice.namespace, notice.name
                )
        task = asyncio.create_task(self._send(body, type_, reason, message, uid, when))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(
        self, body: dict[str, Any], type_: str, reason: str, message: str, uid: str, when: datetime
    ) -> None:
        meta = body.get("metadata", {})
        # Events of cluster-scoped objects live in `default`, as kubectl describe expects.
        namespace = meta.get("namespace") or "default"
        now = when.isoformat().replace("+00:00", "Z")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'object')}.{uid[:12]}",
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
