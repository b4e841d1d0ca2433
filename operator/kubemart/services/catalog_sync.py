"""MarketSource reconcile: fetch the index, materialise MarketApps, report in status.

Incremental: a conditional GET first (ETag / Last-Modified); an unchanged index costs that one
request and no MarketApp write. A changed index is diffed by content hash, so only the charts
that changed are written, and the ones that left the index are deleted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kubemart.adapters import chart_repo
from kubemart.adapters.kube import Body, Kube, KubeError, MarketAppResource, MarketSourceResource
from kubemart.domain.catalog import (
    CONTENT_HASH_ANNOTATION,
    Catalog,
    InvalidIndex,
    catalog_from_index,
    parse_index,
    plan_sync,
)
from kubemart.domain.conditions import Summary, ready_of
from kubemart.domain.durations import parse_duration
from kubemart.domain.triggers import RECONCILE_ANNOTATION
from kubemart.models.marketsource import MarketSource, MarketSourceStatus, SourceType
from kubemart.models.resource import API_VERSION
from kubemart.runtime import metrics
from kubemart.runtime.controller import Key, Result, backoff, jittered
from kubemart.runtime.settings import Settings
from kubemart.services.events import EventRecorder
from kubemart.services.problems import Problem
from kubemart.services.source_auth import source_auth
from kubemart.services.status import write_status


@dataclass
class CatalogSync:
    kube: Kube
    settings: Settings
    events: EventRecorder
    failures: dict[Key, int] = field(default_factory=dict)
    remember: Any = None
    """Callable taking a body the operator just wrote, so that the loop never reconciles an older one."""

    async def reconcile(self, key: Key, body: Body) -> Result:
        meta = body.get("metadata", {})
        if meta.get("deletionTimestamp"):
            return Result()  # the garbage collector removes the MarketApps it owns
        try:
            source = MarketSource.model_validate(body)
        except ValidationError as exc:
            await self._write_status(
                body,
                MarketSourceStatus.model_validate(body.get("status") or {}),
                Summary(
                    False,
                    "InvalidSpec",
                    f"The spec cannot be read: {exc.errors()[0]['msg']}; fix it.",
                    stalled=True,
                ),
            )
            return Result()
        status = source.status.model_copy(deep=True)
        requested = (meta.get("annotations") or {}).get(RECONCILE_ANNOTATION)
        status.last_handled_reconcile_at = requested or status.last_handled_reconcile_at
        if source.spec.suspend:
            await self._write_status(
                body,
                status,
                Summary(None, "Suspended", "Syncing is suspended; the catalog is kept as it is."),
            )
            return Result()
        try:
            interval = parse_duration(source.spec.interval)
            if source.spec.type is not SourceType.HELM:
                raise Problem(
                    "UnsupportedSourceType",
                    f"Sources of type {source.spec.type.value} are not supported yet; use type helm.",
                    stalled=True,
                )
            summary = await self._sync(body, source, status)
        except Problem as problem:
            failures = self.failures.get(key, 0) + 1
            self.failures[key] = failures
            summary = Summary(False, problem.reason, problem.message, stalled=problem.stalled)
            changed = await self._write_status(body, status, summary)
            if changed:
                self.events.warning(body, problem.reason, problem.message)
            if problem.stalled:
                return Result()
            return Result(requeue_after=min(backoff(failures), parse_duration(source.spec.interval)))
        self.failures.pop(key, None)
        await self._write_status(body, status, summary)
        return Result(requeue_after=jittered(interval))

    async def _sync(self, body: Body, source: MarketSource, status: MarketSourceStatus) -> Summary:
        name = body["metadata"]["name"]
        generation = body["metadata"].get("generation")
        auth = await source_auth(self.kube, source)
        same_spec = status.observed_generation == generation and status.revision is not None
        async with chart_repo.make_client(auth=auth) as client:
            try:
                fetched = await chart_repo.fetch_index(
                    client,
                    source.spec.url,
                    etag=status.etag if same_spec else None,
                    last_modified=status.last_modified if same_spec else None,
                    auth=auth,
                    max_bytes=self.settings.index_max_bytes,
                )
            except chart_repo.RepoError as err:
                raise Problem(err.reason, _keep_note(err.message, status)) from err
        status.last_sync_time = datetime.now(UTC)
        if fetched.not_modified or (same_spec and fetched.digest == status.revision):
            return self._ready_summary(source, status, changed=False)
        assert fetched.body is not None
        try:
            # Parsing tens of megabytes of YAML must not stall the event loop.
            catalog = await asyncio.to_thread(_parse, name, fetched.body)
        except InvalidIndex as exc:
            raise Problem("InvalidIndex", _keep_note(f"{exc}", status)) from exc
        written, deleted = await self._apply(body, catalog)
        status.revision = fetched.digest
        status.etag = fetched.etag
        status.last_modified = fetched.last_modified
        status.app_count = len(catalog.entries)
        if written or deleted:
            self.events.normal(
                body,
                "CatalogSynced",
                f"{_apps(len(catalog.entries))} from {source.spec.url}: {written} written, {deleted} removed.",
            )
        if catalog.skipped:
            self.events.warning(
                body,
                "ChartsSkipped",
                f"{len(catalog.skipped)} charts were left out: " + "; ".join(catalog.skipped[:5]),
            )
        return self._ready_summary(source, status, changed=True, skipped=len(catalog.skipped))

    def _ready_summary(
        self, source: MarketSource, status: MarketSourceStatus, *, changed: bool, skipped: int | None = None
    ) -> Summary:
        message = f"{_apps(status.app_count or 0)} from {source.spec.url} at revision {(status.revision or '')[:19]}"
        if skipped:
            message += f"; {skipped} charts left out (see Events)"
        elif not changed:
            previous = ready_of(status.conditions)
            if previous is not None and previous.status == "True" and previous.reason == "Succeeded":
                message = previous.message  # keep the note about skipped charts from the last full sync
        return Summary(True, "Succeeded", message + ("" if message.endswith(".") else "."))

    async def _apply(self, source_body: Body, catalog: Catalog) -> tuple[int, int]:
        name = source_body["metadata"]["name"]
        try:
            existing = await self.kube.list(MarketAppResource, labels={"kubemart.io/source": name})
        except KubeError as err:
            raise Problem(
                "CatalogWriteFailed", f"Listing the catalog's MarketApps failed: {err.message}"
            ) from err
        hashes = {
            o["metadata"]["name"]: (o["metadata"].get("annotations") or {}).get(CONTENT_HASH_ANNOTATION)
            for o in existing
            if _owned_by(o, source_body)
        }
        plan = plan_sync(catalog, hashes)
        owner = {
            "apiVersion": API_VERSION,
            "kind": "MarketSource",
            "name": name,
            "uid": source_body["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        gate = asyncio.Semaphore(self.settings.catalog_write_concurrency)

        async def write(entry: Any) -> None:
            doc = {
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
            async with gate:
                await self.kube.apply(MarketAppResource, doc)

        async def delete(app_name: str) -> None:
            async with gate:
                await self.kube.delete(MarketAppResource, app_name)

        try:
            await asyncio.gather(*(write(e) for e in plan.write), *(delete(n) for n in plan.delete))
        except KubeError as err:
            raise Problem(
                "CatalogWriteFailed", f"Writing the catalog failed: {err.message}; will retry."
            ) from err
        metrics.CATALOG_WRITES.inc(len(plan.write) + len(plan.delete))
        return len(plan.write), len(plan.delete)

    async def _write_status(self, body: Body, status: MarketSourceStatus, summary: Summary) -> bool:
        """Write status if anything but timestamps changed; True if Ready changed."""
        return await write_status(
            self.kube, MarketSourceResource, body, status, summary, remember=self.remember
        )


def _parse(source: str, body: bytes) -> Catalog:
    return catalog_from_index(source, parse_index(body))


def _owned_by(obj: Body, owner: Body) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("uid") == owner["metadata"]["uid"] for r in refs) or not refs


def _keep_note(message: str, status: MarketSourceStatus) -> str:
    if status.app_count:
        return f"{message} The last good catalog ({_apps(status.app_count or 0)}) is kept."
    return message


def _apps(count: int) -> str:
    return f"{count} app" if count == 1 else f"{count} apps"
