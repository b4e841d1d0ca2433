"""A person edits the spec while a reconcile is writing status: the edit is never lost.

The race behind a flaky upgrade (CI at 5d4e222): the reconcile of generation 1 patched status after
the person's edit reached the API server but before its watch event reached the operator. The
server's answer already carried generation 2. The status writer took that answer's metadata into
the body the pass worked from (the store's own object), so the store held generation 2 with the old
spec, the late watch event was dropped as older than it, and a pass claimed `observedGeneration: 2`
for a spec it never saw: Ready on the old version, the upgrade never run.

Here the API server is a small stand-in for `patch_status` only (what it answers is what a real one
answers in that race); the controller, store, `needs` and status writer are the real ones.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from kubemart.adapters.kube import AppInstallResource
from kubemart.domain.conditions import Summary
from kubemart.domain.triggers import needs_reconcile
from kubemart.models.appinstall import AppInstallStatus, Phase
from kubemart.runtime.controller import Body, Controller, Key, Result
from kubemart.runtime.index import Store
from kubemart.services.status import merge_patch, write_status

KEY: Key = ("team", "web")
SOON = 2.0


def appinstall(generation: int, rv: int, version: str, status: dict[str, Any] | None = None) -> Body:
    return {
        "apiVersion": "kubemart.io/v1alpha1",
        "kind": "AppInstall",
        "metadata": {
            "namespace": KEY[0],
            "name": KEY[1],
            "generation": generation,
            "resourceVersion": str(rv),
        },
        "spec": {"source": "main", "app": "hello", "version": version},
        "status": status or {},
    }


def apply_merge(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge(out.get(key), value)
    return out


class Server:
    """The object as the API server holds it; `patch_status` (the status merge patch, as the Kube adapter
    takes it) answers the whole object, as the server does."""

    def __init__(self, current: Body) -> None:
        self.current = copy.deepcopy(current)
        self.patches: list[dict[str, Any]] = []

    def edit_spec(self, version: str) -> Body:
        """A person's edit: a new generation; returns the watch event the operator will get (later)."""
        meta = self.current["metadata"]
        meta["generation"] += 1
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        self.current["spec"]["version"] = version
        return copy.deepcopy(self.current)

    async def patch_status(
        self, res: Any, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> Body:
        self.patches.append(copy.deepcopy(patch))
        self.current["status"] = apply_merge(self.current.get("status") or {}, patch)
        meta = self.current["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        return copy.deepcopy(self.current)


def ready(version: str) -> Summary:
    return Summary(True, "Ready", f"hello {version} is installed and ready")


def test_a_pass_keeps_the_generation_it_read_across_its_writes() -> None:
    server = Server(appinstall(1, 10, "0.1.0"))
    body = appinstall(1, 10, "0.1.0")
    remembered: list[Body] = []
    server.edit_spec("0.2.0")

    async def pass_of_generation_1() -> None:
        status = AppInstallStatus(installed_version="0.1.0")
        await write_status(
            server, AppInstallResource, body, status, ready("0.1.0"), remember=remembered.append
        )  # type: ignore[arg-type]
        status = AppInstallStatus(installed_version="0.1.0", phase=Phase.RUNNING)
        await write_status(
            server, AppInstallResource, body, status, ready("0.1.0"), remember=remembered.append
        )  # type: ignore[arg-type]

    asyncio.run(pass_of_generation_1())
    assert [p.get("observedGeneration") for p in server.patches] == [1, 1]
    assert server.current["status"]["observedGeneration"] == 1, "generation 2 was never observed"
    assert body["metadata"]["generation"] == 1
    assert body["spec"]["version"] == "0.1.0"
    assert body["status"]["phase"] == "Running", "the pass's next write compares with the last one"
    newest = remembered[-1]
    assert (newest["metadata"]["generation"], newest["spec"]["version"]) == (2, "0.2.0")
    assert needs_reconcile(newest)


def test_an_edit_first_seen_in_a_status_write_is_reconciled_at_once() -> None:
    seen: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()

    async def scenario() -> None:
        store = Store()
        server = Server(appinstall(1, 10, "0.1.0"))
        late_event: list[Body] = []

        async def reconcile(key: Key, body: Body) -> Result:
            meta = body["metadata"]
            version = body["spec"]["version"]
            if not late_event:
                # The person's edit reaches the server while this pass runs; its event comes later.
                late_event.append(server.edit_spec("0.2.0"))
            status = AppInstallStatus.model_validate(body.get("status") or {})
            status.installed_version = version
            await write_status(
                server, AppInstallResource, body, status, ready(version), remember=store.record
            )  # type: ignore[arg-type]
            await seen.put((meta["generation"], version, str(meta["resourceVersion"])))
            return Result()

        controller = Controller("appinstall", reconcile, needs=needs_reconcile, store=store)
        try:
            controller.observe(appinstall(1, 10, "0.1.0"))
            assert (await asyncio.wait_for(seen.get(), SOON))[:2] == (1, "0.1.0")
            controller.observe(late_event[0])  # older than the write the store now holds: dropped
            generation, version, _ = await asyncio.wait_for(seen.get(), SOON)
            assert (generation, version) == (2, "0.2.0"), "the edit was reconciled with its own spec"
            assert server.current["status"]["observedGeneration"] == 2
            assert server.current["status"]["installedVersion"] == "0.2.0"
            stored = store.get(KEY)
            assert stored is not None
            assert stored["spec"]["version"] == "0.2.0"
        finally:
            await controller.close()

    asyncio.run(scenario())


def test_a_pass_never_changes_the_stored_body() -> None:
    async def scenario() -> None:
        store = Store()
        original = appinstall(1, 10, "0.1.0", status={"observedGeneration": 1})
        done = asyncio.Event()

        async def reconcile(key: Key, body: Body) -> Result:
            body["status"] = {"written": "by the pass"}
            done.set()
            return Result()

        controller = Controller("appinstall", reconcile, needs=needs_reconcile, store=store)
        try:
            controller.observe(original)
            await asyncio.wait_for(done.wait(), SOON)
            assert store.get(KEY) is original
            assert original["status"] == {"observedGeneration": 1}
        finally:
            await controller.close()

    asyncio.run(scenario())


def test_merge_patch_round_trip() -> None:
    # The stand-in server applies what merge_patch sends exactly as the API server would.
    before = {"a": 1, "b": {"c": 2, "d": 3}}
    after = {"a": 1, "b": {"c": 4}, "e": [1]}
    assert apply_merge(before, merge_patch(before, after)) == after
