"""One active operator at a time: a coordination.k8s.io Lease, held as client-go's leader election holds it.

kopf's peering pauses an operator while a peer of higher priority lives, but the replicas of one
Deployment share a priority, and then kopf pauses them all ("Pausing all operators, including self")
until the others go away: no one works, which is no hand-over. A Lease has exactly one holder. The
holder renews it every `retry` seconds; a standby polls and takes it when the holder released it (on
SIGTERM, after kopf stopped) or has not renewed it for `duration` seconds, measured on the standby's
own clock from the last change it saw, so that clock skew between nodes does not matter. A holder that
cannot renew within `renew_deadline` stops working before anyone may take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from lightkube.resources.coordination_v1 import Lease

from kubemart.adapters.kube import Kube, KubeError

log = logging.getLogger("kubemart.leader")


@dataclass(frozen=True)
class Timing:
    """client-go's defaults: a dead holder is replaced within `duration` + `retry` seconds."""

    duration: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0


@dataclass(frozen=True)
class Observed:
    """The Lease's holder and renew time as last seen, and when (monotonic, on this process's clock)."""

    holder: str
    renew_time: str
    duration: float
    seen_at: float


def may_take(observed: Observed, identity: str, now: float) -> bool:
    """Pure: whether `identity` may hold the Lease now (it holds it, it is free, or it expired)."""
    if not observed.holder or observed.holder == identity:
        return True
    return now >= observed.seen_at + observed.duration


def _micro_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElection:
    def __init__(
        self, kube: Kube, *, name: str, namespace: str, identity: str, timing: Timing | None = None
    ) -> None:
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.timing = timing or Timing()
        self.leading = False
        self.lost = False
        self._observed: Observed | None = None

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: True when this process holds the Lease afterwards."""
        now = _micro_time(datetime.now(UTC))
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.timing.duration),
            "renewTime": now,
        }
        try:
            lease = await self.kube.get(Lease, self.name, self.namespace)
            if lease is None:
                first = {**spec, "acquireTime": now, "leaseTransitions": 0}
                body = {"metadata": {"name": self.name}, "spec": first}
                await self.kube.create(Lease, body, namespace=self.namespace)  # 409 if another was first
                return True
            held = lease.get("spec") or {}
            seen = Observed(
                holder=held.get("holderIdentity") or "",
                renew_time=str(held.get("renewTime") or ""),
                duration=float(held.get("leaseDurationSeconds") or self.timing.duration),
                seen_at=time.monotonic(),
            )
            old = self._observed
            if old is None or (old.holder, old.renew_time) != (seen.holder, seen.renew_time):
                self._observed = seen
            if not may_take(self._observed or seen, self.identity, time.monotonic()):
                return False
            if seen.holder != self.identity:
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(held.get("leaseTransitions") or 0) + 1
            # The resourceVersion makes this a compare-and-swap: of two standbys, one wins.
            patch = {"metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]}, "spec": spec}
            updated = await self.kube.merge_patch(Lease, self.name, patch, namespace=self.namespace)
        except KubeError as err:
            if not err.conflict:
                log.warning("lease %s/%s: %s", self.namespace, self.name, err.message)
            return False
        return updated is not None  # None: deleted meanwhile; the next attempt creates it

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process holds the Lease (True), or until `stop` is set (False)."""
        log.info("waiting to lead: lease %s/%s, identity %s", self.namespace, self.name, self.identity)
        while not stop.is_set():
            if await self.try_acquire_or_renew():
                self.leading = True
                log.info("leading: acquired lease %s/%s", self.namespace, self.name)
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.timing.retry)
        return False

    async def hold(self, on_lost: Callable[[], None]) -> None:
        """Renew every `retry` seconds; when no renewal succeeds for `renew_deadline`, call `on_lost`."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.timing.retry)
            if await self.try_acquire_or_renew():
                last = time.monotonic()
            elif time.monotonic() - last >= self.timing.renew_deadline:
                log.error("lost lease %s/%s: stopping", self.namespace, self.name)
                self.leading, self.lost = False, True
                on_lost()
                return

    async def release(self) -> None:
        """Give the Lease up at once, so that a standby need not wait for it to expire."""
        if not self.leading:
            return
        now = _micro_time(datetime.now(UTC))
        try:
            lease = await self.kube.get(Lease, self.name, self.namespace)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                patch = {
                    "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                    "spec": {"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": now},
                }
                await self.kube.merge_patch(Lease, self.name, patch, namespace=self.namespace)
                log.info("released lease %s/%s", self.namespace, self.name)
        except KubeError as err:
            log.warning(
                "lease %s/%s not released (it expires by itself): %s", self.namespace, self.name, err.message
            )
        self.leading = False


async def _standby_health(endpoint: str) -> web.AppRunner | None:
    """Answer the liveness probe while waiting, on kopf's endpoint, so that the standby is not restarted."""
    if not endpoint:
        return None
    url = urlsplit(endpoint)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"role": "standby"})

    app = web.Application()
    app.router.add_get(url.path or "/", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, url.hostname or "0.0.0.0", url.port or 80).start()
    return runner


async def wait_to_lead(election: LeaderElection, *, liveness_endpoint: str) -> bool:
    """Stand by until leading (True) or until SIGTERM/SIGINT (False), answering the liveness probe."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await _standby_health(liveness_endpoint)
    try:
        return await election.acquire(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if runner is not None:
            await runner.cleanup()  # kopf binds the same endpoint next


def _own_namespace() -> str:
    """The pod's namespace inside a cluster, else `default`."""
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def run_elected(
    loop: asyncio.AbstractEventLoop,
    operate: Callable[[asyncio.Event, Callable[[], Awaitable[None]]], None],
    *,
    name: str,
    namespace: str | None,
    liveness_endpoint: str,
    timing: Timing | None = None,
) -> int:
    """Run `operate` (kopf, until its stop flag is set or a signal arrives) only while holding the Lease.

    Returns the exit code: 0 after a clean stop, 1 when the Lease was lost (the pod restarts and stands by).
    """
    identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    kube = Kube.from_environment()
    election = LeaderElection(
        kube, name=name, namespace=namespace or _own_namespace(), identity=identity, timing=timing
    )
    try:
        if not loop.run_until_complete(wait_to_lead(election, liveness_endpoint=liveness_endpoint)):
            return 0
        stop_flag = asyncio.Event()
        holding = loop.create_task(election.hold(stop_flag.set), name="leader-lease")

        async def step_down() -> None:
            """Stop renewing and give the Lease up: called once the operator's own work has stopped
            (its reconciles and helm processes), before kopf winds down its watch bookkeeping, which
            can take seconds after a burst of events and does nothing a new leader could overlap."""
            holding.cancel()
            await asyncio.gather(holding, return_exceptions=True)
            await election.release()

        try:
            operate(stop_flag, step_down)
        finally:
            holding.cancel()
            loop.run_until_complete(asyncio.gather(holding, return_exceptions=True))
            # Released only after the operator stopped: the next leader never overlaps this one.
            loop.run_until_complete(election.release())
        return 1 if election.lost else 0
    finally:
        loop.run_until_complete(kube.close())
