"""runtime.fair_gate: helm slots shared between namespaces, each capped, handed over in turn."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from kubemart.runtime.fair_gate import FairGate


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=5))


class Holder:
    """A task that holds a slot until released, recording when it got it."""

    def __init__(self, gate: FairGate, tenant: str, order: list[str]) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.queued: list[str] = []
        self.task = asyncio.create_task(self._run(gate, tenant, order))

    async def _run(self, gate: FairGate, tenant: str, order: list[str]) -> None:
        async def on_queued(why: str) -> None:
            self.queued.append(why)

        async with gate.slot(tenant, on_queued=on_queued):
            order.append(tenant)
            self.entered.set()
            await self.release.wait()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_a_tenant_may_not_take_more_than_its_share() -> None:
    async def main() -> None:
        gate, order = FairGate(total=4, per_tenant=2), []
        hogs = [Holder(gate, "a", order) for _ in range(4)]
        await settle()
        assert order == ["a", "a"]
        assert "KUBEMART_MAX_CONCURRENT_HELM_PER_NAMESPACE" in hogs[2].queued[0]
        other = Holder(gate, "b", order)
        await asyncio.wait_for(other.entered.wait(), 1)
        assert gate.in_use == 3
        for h in [*hogs, other]:
            h.release.set()
        await asyncio.gather(*(h.task for h in [*hogs, other]))
        assert gate.in_use == 0

    run(main())


def test_freed_slots_go_to_waiting_tenants_in_turn() -> None:
    async def main() -> None:
        gate, order = FairGate(total=1, per_tenant=1), []
        first = Holder(gate, "a", order)
        await settle()
        waiting = [Holder(gate, t, order) for t in ("a", "a", "a", "b", "c")]
        await settle()
        assert "all 1 helm slots are in use" in waiting[-1].queued[0]
        first.release.set()
        for _ in waiting:
            await settle()
            for w in waiting:
                if w.entered.is_set():
                    w.release.set()
        await asyncio.gather(first.task, *(h.task for h in waiting))
        # After a's first operation, b and c are served before a's backlog.
        assert order[:4] == ["a", "a", "b", "c"]

    run(main())


def test_a_cancelled_waiter_gives_nothing_away_and_takes_nothing() -> None:
    async def main() -> None:
        gate, order = FairGate(total=1, per_tenant=1), []
        first = Holder(gate, "a", order)
        await settle()
        doomed = Holder(gate, "b", order)
        await settle()
        doomed.task.cancel()
        await asyncio.gather(doomed.task, return_exceptions=True)
        assert gate.waiting() == 0
        first.release.set()
        await first.task
        assert gate.in_use == 0
        after = Holder(gate, "c", order)
        await asyncio.wait_for(after.entered.wait(), 1)
        after.release.set()
        await after.task

    run(main())


@pytest.mark.parametrize(("total", "per_tenant"), [(0, 1), (1, 0)])
def test_a_gate_needs_slots(total: int, per_tenant: int) -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        FairGate(total, per_tenant)
