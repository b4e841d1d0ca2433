"""MarketApp.status.installs kept current without a write per AppInstall event.

The AppInstall and MarketApp watch events feed a tally (domain.install_counts) in memory, which
costs nothing on the reconcile path. A task of its own writes the MarketApps whose status shows
other numbers than the tally: at most one status patch per MarketApp per `interval`, and none when
the numbers did not change. At start the AppInstalls are listed once, and nothing is written until
that list is counted, so a restart never writes a partial count. A write that fails is retried at
the next interval; a MarketApp that is gone is simply not written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

from kubemart.adapters.kube import AppInstallResource, Body, Kube, KubeError, MarketAppResource
from kubemart.domain.install_counts import InstallTally, generation_key

log = logging.getLogger("kubemart.installcounts")

Key = tuple[str, str]
WRITERS = 4
"""Status patches in flight at once: many apps changing together do not queue behind one."""


class InstallCounts:
    def __init__(self, kube: Kube, *, interval: float, namespaces: list[str] | None = None) -> None:
        self.kube = kube
        self.interval = interval
        self.namespaces = namespaces
        self.tally = InstallTally()
        self._entries: dict[str, Hashable] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- fed by watch events (no I/O) ------------------------------------------------------------

    def install_seen(self, key: Key, body: Body) -> None:
        if self.tally.put(key, body):
            self._wake.set()

    def install_gone(self, key: Key) -> None:
        if self.tally.drop(key):
            self._wake.set()

    def app_event(self, body: Body, *, deleted: bool) -> bool:
        """Record a MarketApp event; True unless only its status changed (then its AppInstalls have
        nothing new to read: our own count writes must not wake them all)."""
        name = str((body.get("metadata") or {}).get("name") or "")
        if deleted:
            self.tally.app_gone(name)
            self._entries.pop(name, None)
            return True
        self.tally.app_seen(body)
        if self.tally.pending():
            self._wake.set()
        entry = generation_key(body)
        changed = self._entries.get(name) != entry
        self._entries[name] = entry
        return changed

    # --- the writer --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="install-counts")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        await self._count_all()
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # a bug must not stop the counting for good: log it, go on next round
                log.exception("install counts: a round of writes failed")
                self._wake.set()
            # The interval is what bounds the writes: whatever changes meanwhile waits for the next round.
            await asyncio.sleep(self.interval)

    async def _count_all(self) -> None:
        """Count the AppInstalls listed now (the watch may not have delivered them all yet)."""
        delay = 1.0
        while True:
            self.tally.begin_listing()
            try:
                bodies: list[Body] = []
                everywhere: list[str | None] = [None]
                for ns in self.namespaces or everywhere:
                    bodies += await self.kube.list(AppInstallResource, namespace=ns)
            except KubeError as err:
                log.warning("install counts: AppInstalls could not be listed (%s); trying again", err)
                self.tally.listed([])
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            self.tally.listed(bodies)
            self._wake.set()
            return

    async def flush(self) -> int:
        """Write every MarketApp whose status shows other numbers than the tally; the writes made."""
        due = list(self.tally.due().items())
        written = 0

        async def worker() -> None:
            nonlocal written
            while due:
                name, installs = due.pop()
                try:
                    body = await self.kube.patch_status(
                        MarketAppResource, name, {"installs": installs.wire()}
                    )
                except KubeError as err:
                    log.warning("install counts of MarketApp %s not written (%s); retrying", name, err)
                    self.tally.retry(name)
                    self._wake.set()
                    continue
                written += 1
                if body is None:
                    self.tally.app_gone(name)
                else:
                    self.tally.app_seen(body)

        await asyncio.gather(*(worker() for _ in range(min(WRITERS, len(due)))))
        return written
