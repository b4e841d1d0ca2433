"""The cluster's free capacity, kept in memory from watches on Nodes and Pods.

An informer in the shape of the scheduler's own cache: each Node's allocatable, schedulability and
architecture, and for each pod bound to a node and not finished, the node and what it requests
(three integers: nothing else of the pod is kept). The pods watch is filtered by the API server
(`spec.nodeName!=`, phase neither Succeeded nor Failed), so pods that hold nothing never arrive; a
pod that finishes leaves the selection and comes as DELETED. Whenever free capacity grows (a node
added, uncordoned, Ready again or bigger; a pod gone) `on_grow` is called, at most once per
`wake_interval`, and the AppInstalls waiting on InsufficientResources look again: woken by a change,
never by polling.

Memory: one entry per running pod, about 400 bytes (docs/security.md). A watch the API server
refuses (the operator may not list nodes or pods) leaves the capacity unknown, and unknown capacity
blocks nothing: the check is a courtesy, the scheduler stays the judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from lightkube import operators
from lightkube.resources.core_v1 import Node, Pod

from kubemart.adapters.kube import Kube
from kubemart.domain.capacity import Capacity, NodeInfo, Resources, capacity, node_info, pod_requests
from kubemart.runtime.controller import backoff

log = logging.getLogger("kubemart.capacity")

PODS_HOLDING = {
    "spec.nodeName": operators.not_equal(""),
    "status.phase": operators.not_in(["Succeeded", "Failed"]),
}
PodKey = tuple[str, str]
VERSION_TTL = 600.0
"""Seconds the API server's version is taken as known."""
FIRST_LIST_WAIT = 10.0
"""Seconds a reconcile waits, after the operator starts, for the first lists of nodes and pods."""


class CapacityWatch:
    def __init__(
        self,
        kube: Kube,
        on_grow: Callable[[], None],
        *,
        wake_interval: float = 2.0,
        backoff_base: float = 1.0,
    ) -> None:
        self.kube = kube
        self.on_grow = on_grow
        self.wake_interval = wake_interval
        self.backoff_base = backoff_base
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[PodKey, tuple[str, Resources]] = {}
        self._requested: dict[str, Resources] = {}
        self._listed = {"nodes": False, "pods": False}
        self._tried = {"nodes": asyncio.Event(), "pods": asyncio.Event()}
        """Set once the first list of each kind succeeded or failed: observe() waits for no longer."""
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: asyncio.TimerHandle | None = None
        self._last_wake = 0.0
        self.version: str | None = None
        self._version_at = 0.0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._follow("nodes"), name="capacity-watch:nodes"),
            asyncio.create_task(self._follow("pods"), name="capacity-watch:pods"),
        ]

    async def ready(self) -> None:
        """Until both kinds were listed once (or failed to be), at most FIRST_LIST_WAIT seconds."""
        waiting = [e.wait() for e in self._tried.values() if not e.is_set()]
        if waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_LIST_WAIT):
                    await asyncio.gather(*waiting)

    def snapshot(self) -> Capacity | None:
        """The free capacity now; None until nodes and pods have both been listed."""
        if not all(self._listed.values()):
            return None
        return capacity(self._nodes.values(), self._requested)

    def stats(self) -> dict[str, int]:
        return {"nodes": len(self._nodes), "pods": len(self._pods)}

    async def close(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- what changed ----------------------------------------------------------------------------

    def node_seen(self, obj: dict[str, Any]) -> None:
        new = node_info(obj)
        old = self._nodes.get(new.name)
        self._nodes[new.name] = new
        if new.closed is None and (
            old is None
            or old.closed is not None
            or old.arch != new.arch
            or not old.allocatable.covers(new.allocatable)
        ):
            self._grew()

    def node_gone(self, name: str) -> None:
        self._nodes.pop(name, None)

    def pod_seen(self, key: PodKey, node: str, requests: Resources) -> None:
        old = self._pods.get(key)
        if old is not None:
            self._release(old)
        self._pods[key] = (node, requests)
        self._requested[node] = self._requested.get(node, Resources()) + requests
        if old is not None and (old[0] != node or not requests.covers(old[1])):
            self._grew()  # moved, or resized down

    def pod_gone(self, key: PodKey) -> None:
        old = self._pods.pop(key, None)
        if old is not None:
            self._release(old)
            if not old[1].empty:
                self._grew()

    def _release(self, held: tuple[str, Resources]) -> None:
        node, requests = held
        left = self._requested.get(node, Resources()) - requests
        if left.empty:
            self._requested.pop(node, None)
        else:
            self._requested[node] = left

    def _grew(self) -> None:
        """Call on_grow now, or once the interval since the last call is over (bursts make one call)."""
        if self._wake is not None or not all(self._listed.values()):
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_wake + self.wake_interval - loop.time())
        self._wake = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._wake = None
        self._last_wake = asyncio.get_running_loop().time()
        self.on_grow()

    # --- the watches ------------------------------------------------------------------------------

    async def cluster_version(self) -> str | None:
        """The API server's gitVersion, read again when older than VERSION_TTL (a control plane
        upgraded under a running operator is seen); the last one known when the read fails."""
        now = asyncio.get_running_loop().time()
        if self.version is None or now - self._version_at > VERSION_TTL:
            try:
                doc = await self.kube.server_version()
            except Exception as exc:  # kept: the version is advice, the next read may work
                log.info("reading the API server's version failed: %s", str(exc)[:200])
            else:
                self.version, self._version_at = str(doc.get("gitVersion") or "") or None, now
        return self.version

    async def _follow(self, kind: str) -> None:
        api: Any = self.kube.client
        res: Any = Node if kind == "nodes" else Pod
        fields = PODS_HOLDING if kind == "pods" else None
        failures = 0
        while True:
            try:
                listing = api.list(res, fields=fields, chunk_size=500)
                # Built aside and swapped in whole: a reconcile never reads a half-listed cluster.
                if kind == "nodes":
                    nodes = {}
                    async for obj in listing:
                        info = node_info(obj.to_dict())
                        nodes[info.name] = info
                    self._nodes = nodes
                else:
                    pods: dict[PodKey, tuple[str, Resources]] = {}
                    requested: dict[str, Resources] = {}
                    async for obj in listing:
                        if (held := _holding(obj)) is not None:
                            key, node, req = held
                            pods[key] = (node, req)
                            requested[node] = requested.get(node, Resources()) + req
                    self._pods, self._requested = pods, requested
                self._listed[kind] = True
                self._tried[kind].set()
                self._grew()  # a relist may have found anything: the waiting apps look again
                async for event, obj in api.watch(
                    res, fields=fields, resource_version=listing.resourceVersion
                ):
                    failures = 0
                    if kind == "nodes":
                        if event == "DELETED":
                            self.node_gone(obj.metadata.name)
                        else:
                            self.node_seen(obj.to_dict())
                    else:
                        self._pod_event(event, obj)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, expired (410), or the API server went away
                self._tried[kind].set()
                failures += 1
                delay = backoff(failures, base=self.backoff_base, cap=300.0)
                level = logging.WARNING if failures in (1, 5) else logging.DEBUG
                log.log(level, "watch of %s ended (%s); again in %.0fs", kind, str(exc)[:200], delay)
                await asyncio.sleep(delay)

    def _pod_event(self, event: str, obj: Any) -> None:
        held = None if event == "DELETED" else _holding(obj)
        if held is None:
            self.pod_gone((obj.metadata.namespace or "", obj.metadata.name or ""))
        else:
            self.pod_seen(*held)


def _holding(obj: Any) -> tuple[PodKey, str, Resources] | None:
    """(pod, node, requests) of a pod that holds something on a node; None for one that holds nothing."""
    meta, spec, status = obj.metadata, obj.spec, obj.status
    phase = status.phase if status is not None else None
    if spec is None or not spec.nodeName or phase in ("Succeeded", "Failed"):
        return None
    requests = pod_requests(spec.to_dict())
    if requests.empty:
        return None
    return (meta.namespace or "", meta.name or ""), spec.nodeName, requests
