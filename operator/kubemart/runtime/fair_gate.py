"""Helm slots shared fairly between tenants.

A plain semaphore lets one namespace with as many never-ready installs as there are slots hold
every slot for as long as its timeouts allow, and every other namespace waits. Here a tenant may
hold at most `per_tenant` slots, and a freed slot goes to the tenants that wait in turn (round
robin), so one tenant's backlog delays another's operation by at most one operation per tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable

OnQueued = Callable[[str], Awaitable[None]]
"""Told, once, why an operation waits (for the object's status)."""


class FairGate:
    def __init__(self, total: int, per_tenant: int) -> None:
        if total < 1 or per_tenant < 1:
            raise ValueError("a gate needs at least one slot, and one per tenant")
        self.total = total
        self.per_tenant = min(per_tenant, total)
        self._in_use = 0
        self._held: dict[str, int] = {}
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def in_use(self) -> int:
        return self._in_use

    def held(self, tenant: str) -> int:
        return self._held.get(tenant, 0)

    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def _may_take(self, tenant: str) -> bool:
        return self._in_use < self.total and self._held.get(tenant, 0) < self.per_tenant

    def _take(self, tenant: str) -> None:
        self._in_use += 1
        self._held[tenant] = self._held.get(tenant, 0) + 1

    def _why(self, tenant: str) -> str:
        if self._held.get(tenant, 0) >= self.per_tenant:
            return (
                f"this namespace already runs {self.per_tenant} helm operations, the most one namespace may "
                "run at once (KUBEMART_MAX_CONCURRENT_HELM_PER_NAMESPACE)"
            )
        return f"all {self.total} helm slots are in use (KUBEMART_MAX_CONCURRENT_HELM)"

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str, *, on_queued: OnQueued | None = None) -> AsyncIterator[None]:
        """Hold one slot for `tenant` while the block runs."""
        if not self._may_take(tenant) or self._queued_ahead(tenant):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(tenant, deque()).append(waiter)
            try:
                if on_queued is not None:
                    await on_queued(self._why(tenant))
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release(tenant)  # the slot was handed over just as we were cancelled
                else:
                    self._forget(tenant, waiter)
                raise
        else:
            self._take(tenant)
        try:
            yield
        finally:
            self._release(tenant)

    def _queued_ahead(self, tenant: str) -> bool:
        # A tenant with operations already waiting does not jump its own queue.
        return bool(self._waiting.get(tenant))

    def _forget(self, tenant: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(tenant)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(waiter)
        if not queue:
            del self._waiting[tenant]

    def _release(self, tenant: str) -> None:
        self._in_use -= 1
        left = self._held.get(tenant, 0) - 1
        if left > 0:
            self._held[tenant] = left
        else:
            self._held.pop(tenant, None)
        self._hand_over()

    def _hand_over(self) -> None:
        """Give free slots to waiting tenants in turn, each moved to the back once served."""
        progressed = True
        while progressed and self._in_use < self.total and self._waiting:
            progressed = False
            for tenant in list(self._waiting):
                if self._in_use >= self.total:
                    return
                if self._held.get(tenant, 0) >= self.per_tenant:
                    continue
                queue = self._waiting[tenant]
                waiter = queue.popleft()
                if not queue:
                    del self._waiting[tenant]
                else:
                    self._waiting.move_to_end(tenant)
                if waiter.done():
                    continue
                self._take(tenant)
                waiter.set_result(None)
                progressed = True
                break
