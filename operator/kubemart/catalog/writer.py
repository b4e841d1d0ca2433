"""Writing a sync plan: MarketApps created, updated and deleted by a few workers.

A few workers pull the next write from one list, rather than one task per MarketApp: thousands of
tasks made at once hold the event loop while they are made, and keep memory that is not needed. A
new MarketApp is applied without force, so that a name someone else took meanwhile is reported
(a conflict) rather than taken over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from kubemart.adapters.kube import Kube, KubeError, MarketAppResource
from kubemart.catalog.entries import CONTENT_HASH_ANNOTATION, CatalogEntry
from kubemart.catalog.plan import SyncPlan
from kubemart.models.resource import API_VERSION


async def write_plan(
    kube: Kube,
    plan: SyncPlan,
    *,
    owner: dict[str, Any],
    concurrency: int,
    deleting: Callable[[str], None],
    not_deleted: Callable[[str], None],
) -> list[str]:
    """Carry out `plan`; the names found taken when creating. Raises the first KubeError.

    `deleting(name)` is called before a MarketApp is deleted and `not_deleted(name)` when it was
    already gone, so that the sync knows which deletions are its own.
    """
    conflicted: list[str] = []

    async def create(entry: CatalogEntry) -> None:
        # A server-side apply that does not force: it creates the object, and the fields it sets are
        # owned by the same manager and operation as later updates (so a field a later version drops,
        # a price say, is removed; a POST would own them as another operation and keep them). Someone
        # who wrote the name since we listed makes it conflict (their fields, or a second controller).
        try:
            await kube.apply(MarketAppResource, document(entry, owner), force=False)
        except KubeError as err:
            if err.status not in (409, 422):
                raise
            conflicted.append(entry.name)  # someone wrote it since we listed: never take it over

    async def update(entry: CatalogEntry) -> None:
        # Ours (controlled by this source's uid): apply wins over anyone's edits of it.
        await kube.apply(MarketAppResource, document(entry, owner), force=True)

    async def delete(name: str) -> None:
        deleting(name)
        if not await kube.delete(MarketAppResource, name):
            not_deleted(name)

    writes: list[Callable[[], Awaitable[None]]] = [
        *(lambda e=e: create(e) for e in plan.create),
        *(lambda e=e: update(e) for e in plan.update),
        *(lambda n=n: delete(n) for n in plan.delete),
    ]
    pending = iter(writes)
    failed: list[KubeError] = []

    async def worker() -> None:
        for write in pending:
            if failed:
                return
            try:
                await write()
            except KubeError as err:
                failed.append(err)
                return

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(writes)))))
    if failed:
        raise failed[0]
    return conflicted


def document(entry: CatalogEntry, owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "MarketApp",
        "metadata": {
            "name": entry.name,
            "labels": entry.labels,
            "annotations": {CONTENT_HASH_ANNOTATION: entry.content_hash},
            "ownerReferences": [owner],
        },
        "spec": entry.spec.wire(),
    }
