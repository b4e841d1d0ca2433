"""Fan-out of the operator's Events to NotificationSinks, and their delivery (docs/notifications.md).

`publish` runs inside EventRecorder's synchronous call: it only appends to the bounded in-memory
queue of each matching sink, so a reconcile never waits for a receiver. One task per sink delivers
its queue in order: the head is retried with exponential backoff until the receiver takes it, so a
receiver that is down loses nothing while the queue holds (when full, the oldest Event drops and is
counted). Counters reach the sink's status in one write per sink every `notify_status_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubemart.adapters.kube import Kube, KubeError, NotificationSinkResource
from kubemart.adapters.receiver import ReceiverError, Receivers
from kubemart.domain.clip import clip
from kubemart.domain.notify import SIGNATURE_HEADER, Filters, Notice, cloud_event, signature, wants
from kubemart.runtime import metrics
from kubemart.runtime.controller import Key, backoff
from kubemart.runtime.settings import Settings

log = logging.getLogger("kubemart.notify")


@dataclass(frozen=True)
class Target:
    """Where and how one sink posts; `None` on a Sink while its spec or Secret is wrong."""

    url: str
    hmac_key: bytes | None = None
    token: str | None = None


@dataclass
class Sink:
    key: Key
    filters: Filters
    target: Target | None
    queue: deque[Notice]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    delivered: int = 0
    dropped: int = 0
    failures: int = 0
    last_delivery: dict[str, Any] | None = None
    last_failure: dict[str, Any] | None = None
    dirty: bool = False

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "delivered": self.delivered,
            "dropped": self.dropped,
            "failures": self.failures,
            "queued": len(self.queue),
        }
        if self.last_delivery is not None:
            out["lastDelivery"] = self.last_delivery
        if self.last_failure is not None:
            out["lastFailure"] = self.last_failure
        return out


def _stamp(now: datetime) -> str:
    return now.isoformat().replace("+00:00", "Z")


class Notifier:
    def __init__(self, kube: Kube, settings: Settings, receivers: Receivers) -> None:
        self.kube = kube
        self.settings = settings
        self.receivers = receivers
        self._sinks: dict[Key, Sink] = {}
        self._by_namespace: dict[str, set[Key]] = {}
        """Sinks by their namespace: an Event looks only at its own namespace's and the admin's."""
        self._flusher: asyncio.Task[None] | None = None

    # --- fed by EventRecorder -------------------------------------------------------------------

    def publish(self, notice: Notice) -> None:
        """Queue `notice` for every sink that may see it and wants it; never waits."""
        keys = self._by_namespace.get(notice.namespace, set())
        if notice.namespace != self.settings.notify_admin_namespace:
            keys = keys | self._by_namespace.get(self.settings.notify_admin_namespace, set())
        for key in sorted(keys):
            sink = self._sinks[key]
            if not wants(sink.filters, notice):
                continue
            if len(sink.queue) == sink.queue.maxlen:
                sink.dropped += 1  # deque drops the oldest on append
                metrics.NOTIFICATIONS.labels("dropped").inc()
                sink.dirty = True
            sink.queue.append(notice)
            sink.dirty = True  # status.queued
            sink.wake.set()

    # --- fed by the sink reconcile -------------------------------------------------------------

    def configure(self, key: Key, filters: Filters, target: Target | None, status: dict[str, Any]) -> None:
        """Start or change a sink; `target` None holds its queue until the spec or Secret is fixed."""
        sink = self._sinks.get(key)
        if sink is None:
            if target is None:
                return  # never valid yet: nothing is queued for it
            sink = Sink(
                key,
                filters,
                target,
                deque(maxlen=self.settings.notify_queue_size),
                delivered=int(status.get("delivered") or 0),
                dropped=int(status.get("dropped") or 0),
            )
            self._sinks[key] = sink
            self._by_namespace.setdefault(key[0], set()).add(key)
            sink.task = asyncio.create_task(self._deliver(sink), name=f"notify:{key[0]}/{key[1]}")
        sink.filters, sink.target = filters, target
        sink.wake.set()  # a fixed Secret or URL is tried at once, not after the backoff

    def forget(self, key: Key) -> None:
        sink = self._sinks.pop(key, None)
        self._by_namespace.get(key[0], set()).discard(key)
        if sink is not None and sink.task is not None:
            sink.task.cancel()

    def stats(self, key: Key) -> dict[str, Any] | None:
        sink = self._sinks.get(key)
        return sink.status() if sink is not None else None

    # --- delivery ------------------------------------------------------------------------------

    async def _deliver(self, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        next_at = 0.0
        while True:
            while not sink.queue or sink.target is None:
                sink.wake.clear()
                await sink.wake.wait()
            if (wait := next_at - loop.time()) > 0:
                await asyncio.sleep(wait)  # the rate limit: at most notify_rate posts a second
            next_at = loop.time() + 1 / self.settings.notify_rate
            notice, target = sink.queue[0], sink.target
            try:
                status = await self.receivers.post(target.url, *self._request(notice, target))
            except ReceiverError as err:
                self._failed(sink, err.message)
                if not err.retryable:
                    self._done(sink, notice, delivered=False)
                    continue
                sink.wake.clear()
                # Until the backoff is over or the sink's spec or Secret changed.
                with contextlib.suppress(TimeoutError):
                    delay = backoff(sink.failures, base=1.0, cap=self.settings.notify_backoff_max)
                    await asyncio.wait_for(sink.wake.wait(), timeout=delay)
                continue
            except Exception as exc:  # a bug: say so, keep the Event, and do not spin
                log.exception("delivery to sink %s/%s failed unexpectedly", *sink.key)
                self._failed(sink, f"internal error: {type(exc).__name__}")
                await asyncio.sleep(backoff(sink.failures, base=1.0, cap=self.settings.notify_backoff_max))
                continue
            sink.failures = 0
            sink.last_delivery = {
                "time": _stamp(datetime.now(UTC)),
                "reason": notice.reason,
                "httpStatus": status,
            }
            self._done(sink, notice, delivered=True)

    def _request(self, notice: Notice, target: Target) -> tuple[dict[str, str], bytes]:
        headers, body = cloud_event(notice)
        if target.hmac_key is not None:
            headers[SIGNATURE_HEADER] = signature(target.hmac_key, body)
        if target.token is not None:
            headers["Authorization"] = f"Bearer {target.token}"
        return headers, body

    def _failed(self, sink: Sink, message: str) -> None:
        metrics.NOTIFICATIONS.labels("failed").inc()
        sink.failures += 1
        sink.last_failure = {"time": _stamp(datetime.now(UTC)), "message": clip(message, 1000)}
        sink.dirty = True

    def _done(self, sink: Sink, notice: Notice, *, delivered: bool) -> None:
        if sink.queue and sink.queue[0] is notice:  # unless the overflow dropped it meanwhile
            sink.queue.popleft()
        metrics.NOTIFICATIONS.labels("delivered" if delivered else "dropped").inc()
        if delivered:
            sink.delivered += 1
        else:
            sink.dropped += 1
        sink.dirty = True

    # --- status, batched -----------------------------------------------------------------------

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="notify:status")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.notify_status_interval)
            await self.flush()

    async def flush(self) -> None:
        """One status write per sink whose counters changed since the last."""
        for sink in [s for s in self._sinks.values() if s.dirty]:
            sink.dirty = False
            namespace, name = sink.key
            try:
                await self.kube.patch_status(NotificationSinkResource, name, sink.status(), namespace)
            except KubeError as err:
                sink.dirty = True  # written at the next round
                log.warning("status of sink %s/%s not written: %s", namespace, name, err.message)

    async def close(self) -> None:
        tasks = [s.task for s in self._sinks.values() if s.task is not None]
        if self._flusher is not None:
            tasks.append(self._flusher)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.flush()
        await self.receivers.close()
