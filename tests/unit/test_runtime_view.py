"""The runtime view's inputs, from the operator's real parts: controller counts, helm slots, the object in logs."""

from __future__ import annotations

import asyncio
from typing import Any

from kubemart.adapters.helm import Helm
from kubemart.runtime import logs
from kubemart.runtime.controller import Body, Controller, Key, Result
from kubemart.runtime.runtime_state import Filters
from kubemart.services.drift_watch import DriftWatcher
from kubemart.services.runtime_view import RuntimeView
from kubemart.services.webhook_server import WebhookServer


def app(name: str, rv: int, phase: str = "Running") -> Body:
    return {
        "kind": "AppInstall",
        "metadata": {"namespace": "team-a", "name": name, "resourceVersion": str(rv), "generation": 1},
        "spec": {"source": "demo", "app": name},
        "status": {"phase": phase},
    }


def test_controller_stats_count_objects_queued_and_in_flight() -> None:
    async def scenario() -> None:
        gate, started = asyncio.Event(), asyncio.Event()
        seen: list[logs.ObjectRef | None] = []

        async def reconcile(key: Key, body: Body) -> Result:
            seen.append(logs.CURRENT.get())
            started.set()
            await gate.wait()
            return Result()

        c = Controller("appinstall", reconcile, needs=lambda _: True)
        assert c.stats() == {"objects": 0, "queued": 0, "inFlight": 0}
        c.observe(app("wiki", 1))
        await asyncio.wait_for(started.wait(), 2)
        c.record(app("blog", 2))
        assert c.stats() == {"objects": 2, "queued": 0, "inFlight": 1}
        c.observe(app("wiki", 3))  # a newer body while one reconciles: woken, waiting for its worker
        assert c.stats() == {"objects": 2, "queued": 1, "inFlight": 1}
        gate.set()
        await c.close()
        assert seen[0] == logs.ObjectRef("AppInstall", "team-a", "wiki"), "the loop's task names its object"

    asyncio.run(scenario())


def test_the_view_reads_what_the_loops_hold_and_the_helm_slots() -> None:
    async def scenario() -> dict[str, Any]:
        async def idle(key: Key, body: Body) -> Result:
            return Result()

        apps = Controller("appinstall", idle, needs=lambda _: False)
        sources = Controller("marketsource", idle, needs=lambda _: False)
        pays = Controller("payment", idle, needs=lambda _: False)
        apps.record(app("wiki", 1))
        apps.record(app("broken", 2, phase="Failed"))
        helm = Helm(None, executable="helm", max_concurrent=3)  # type: ignore[arg-type]
        entered, release = asyncio.Event(), asyncio.Event()

        async def slow() -> None:
            entered.set()
            await release.wait()

        running = asyncio.create_task(helm._run("install", slow(), None))
        await asyncio.wait_for(entered.wait(), 2)
        view = RuntimeView(
            sources,
            apps,
            pays,
            helm,
            DriftWatcher(None, lambda ns, r: None),
            WebhookServer(None, None),  # type: ignore[arg-type]
        )
        state = view.state(Filters(phase="Failed"))
        assert view.components().helm_slots_in_use == 1
        release.set()
        await running
        assert helm.slots_in_use() == 0
        return state

    state = asyncio.run(scenario())
    assert [a["name"] for a in state["apps"]] == ["broken"]
    assert state["operator"]["helm"] == {"slotsInUse": 1, "slotsMax": 3}
    assert state["operator"]["controllers"]["appinstall"]["objects"] == 2
    assert state["operator"]["driftWatches"] == {"alive": 0, "total": 0}
    assert state["operator"]["webhookServer"] == {"running": False}
