"""The capacity watch's bookkeeping: requests summed per node, and a wake only when free capacity grows.

The list and watch themselves run against the real API server in tests/test_requirements.py; here the
events are fed in directly, as the watch would feed them.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from kubemart.adapters.kube import Kube
from kubemart.domain.capacity import NodeFree, Resources
from kubemart.services.capacity import CapacityWatch

GI = 1 << 30


def node(name: str, *, cpu: str = "4", ready: str = "True", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/arch": "amd64"}},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": "8Gi"},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def listed(wakes: list[int]) -> CapacityWatch:
    watch = CapacityWatch(cast(Kube, None), lambda: wakes.append(1), wake_interval=0)
    watch._listed = {"nodes": True, "pods": True}  # as after the first lists
    return watch


async def settle() -> None:
    """Let the loop run what is due now (a wake is scheduled on the loop, never called inline)."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_unknown_until_both_kinds_are_listed() -> None:
    watch = CapacityWatch(cast(Kube, None), lambda: None)
    watch.node_seen(node("a"))
    assert watch.snapshot() is None


def test_free_capacity_follows_pods_and_nodes_and_wakes_only_when_it_grows() -> None:
    async def scenario() -> None:
        wakes: list[int] = []
        watch = listed(wakes)
        watch.node_seen(node("a"))
        await settle()
        assert len(wakes) == 1, "a new node is more room"
        watch.pod_seen(("ns", "p1"), "a", Resources(cpu=1500, memory=GI))
        watch.pod_seen(("ns", "p2"), "a", Resources(cpu=500))
        await settle()
        assert len(wakes) == 1, "pods taking room wake nobody"
        snap = watch.snapshot()
        assert snap is not None
        assert snap.nodes == (NodeFree("a", "amd64", Resources(2000, 7 * GI, 0), False),)
        watch.pod_gone(("ns", "p1"))
        await settle()
        assert len(wakes) == 2, "a pod gone frees room"
        watch.node_seen(node("a", unschedulable=True))
        await settle()
        assert watch.snapshot().nodes == ()  # type: ignore[union-attr]
        assert len(wakes) == 2, "a cordoned node is less room"
        watch.node_seen(node("a"))
        await settle()
        assert len(wakes) == 3, "uncordoned again"
        watch.node_seen(node("a", cpu="16"))
        await settle()
        assert len(wakes) == 4, "a bigger node"
        assert watch.stats() == {"nodes": 1, "pods": 1}

    asyncio.run(scenario())


def test_a_burst_of_growth_makes_one_wake() -> None:
    async def scenario() -> None:
        wakes: list[int] = []
        watch = listed(wakes)
        for i in range(50):
            watch.pod_seen(("ns", f"p{i}"), "a", Resources(cpu=100))
        for i in range(50):
            watch.pod_gone(("ns", f"p{i}"))
        await settle()
        assert len(wakes) == 1
        assert watch.snapshot() is not None
        assert watch.stats()["pods"] == 0

    asyncio.run(scenario())
