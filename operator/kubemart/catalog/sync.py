"""MarketSource reconcile: take a snapshot through the source, materialise MarketApps, report in status.

Incremental: once a source's MarketApps are known to match its last good snapshot (checked by a full
sync in this process), a sync asks the source for what changed since that snapshot, which for an
unchanged catalog is one cheap request (an HTTP 304) and no MarketApp write. A full sync lists the
source's MarketApps and writes only what differs. A MarketApp deleted by anyone but this sync makes its
source unverified again and wakes it, so the next sync restores the app even when the index has not
changed. A failing sync keeps the last good catalog and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kubemart.adapters.kube import Body, Kube, KubeError, MarketAppResource, MarketSourceResource
from kubemart.catalog.entries import (
    Catalog,
    CatalogTooLarge,
    catalog_from_charts,
    label_value,
)
from kubemart.catalog.olares_read import ManifestReader
from kubemart.catalog.plan import SyncPlan, effective_interval, existing_of, plan_sync
from kubemart.catalog.status import (
    apps,
    failure_summary,
    key_problem,
    ready_summary,
    syncing_summary,
    values_problem,
    with_note,
)
from kubemart.catalog.writer import write_plan
from kubemart.domain.bounds import ValueLimits
from kubemart.domain.catalog import valid_source_name
from kubemart.domain.clip import clip
from kubemart.domain.conditions import Summary
from kubemart.domain.triggers import requested_at
from kubemart.models.marketsource import MarketSource, MarketSourceStatus, SourceType
from kubemart.models.resource import API_VERSION
from kubemart.runtime import metrics
from kubemart.runtime.controller import Key, Result, backoff, jittered
from kubemart.runtime.settings import Settings
from kubemart.services.events import EventRecorder
from kubemart.services.status import write_status
from kubemart.sources.base import Cursor, SourceError, Unchanged
from kubemart.sources.cache import ChartCache
from kubemart.sources.credentials import read_credentials
from kubemart.sources.offload import offload
from kubemart.sources.registry import source_for

MAX_EVENT = 1000
"""Characters of an Event message."""
_MAX_OWN_DELETES = 100_000


@dataclass
class CatalogSync:
    kube: Kube
    settings: Settings
    events: EventRecorder
    failures: dict[Key, int] = field(default_factory=dict)
    remember: Any = None
    """Callable taking a body the operator just wrote, so that the loop never reconciles an older one."""
    _verified: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    """Source name -> (uid, generation) whose MarketApps matched its last good snapshot, in this process."""
    _own_deletes: set[str] = field(default_factory=set)
    """MarketApps this sync deleted: their DELETED events are echoes, not something to restore."""

    def __post_init__(self) -> None:
        self._cache = ChartCache(self.settings.chart_cache_dir)
        self._manifests = ManifestReader(self.settings.manifest_read_concurrency)

    def app_deleted(self, body: Body) -> str | None:
        """A MarketApp was deleted: the source that should re-sync to restore it, or None.

        The source is the name's first label (`<source>.<app>`, collision-free by construction), so
        this holds whoever wrote the object that was deleted.
        """
        name = str((body.get("metadata") or {}).get("name") or "")
        if name in self._own_deletes:
            self._own_deletes.discard(name)
            return None
        source = name.partition(".")[0]
        if not valid_source_name(source):
            return None
        self._verified.pop(source, None)
        return source

    def forget(self, key: Key) -> None:
        """The MarketSource is gone: drop what was kept about it."""
        self.failures.pop(key, None)
        self._verified.pop(key[1], None)

    async def reconcile(self, key: Key, body: Body) -> Result:
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            self.forget(key)
            return Result()  # the garbage collector removes the MarketApps it owns
        status = MarketSourceStatus.model_validate(body.get("status") or {})
        try:
            source, interval, interval_note = self._admit(body)
        except _Refused as refused:
            await self._stall(body, status, refused.reason, refused.message)
            return Result()
        status = source.status.model_copy(deep=True)
        status.last_handled_reconcile_at = requested_at(body) or status.last_handled_reconcile_at
        if source.spec.suspend:
            await self._write_status(
                body,
                status,
                Summary(None, "Suspended", "Syncing is suspended; the catalog is kept as it is."),
            )
            return Result()
        if status.observed_generation != meta.get("generation"):
            # A new spec: say at once that it is being worked on, however long the repository takes.
            await self._write_status(body, status, syncing_summary(source))
        try:
            summary = await self._sync(body, source, status)
        except SourceError as err:
            failures = self.failures[key] = self.failures.get(key, 0) + 1
            failed = failure_summary(err, status)
            if await self._write_status(body, status, failed):
                self.events.warning(body, failed.reason, failed.message)
            return Result() if failed.stalled else Result(requeue_after=min(backoff(failures), interval))
        self.failures.pop(key, None)
        limits = ValueLimits(
            self.settings.values_max_depth, self.settings.values_max_nodes, self.settings.values_max_bytes
        )
        problem = key_problem(source) or await offload(values_problem, source, limits)
        summary = with_note(problem or summary, interval_note)
        if await self._write_status(body, status, summary) and problem is not None:
            self.events.warning(body, problem.reason, problem.message)
        return Result(requeue_after=jittered(interval))

    def _admit(self, body: Body) -> tuple[MarketSource, float, str | None]:
        """The source, its interval and a note about it; _Refused when it cannot be synced as it is."""
        name = body["metadata"]["name"]
        if not valid_source_name(name):
            raise _Refused(
                "InvalidSourceName",
                f"The name {clip(name, 80)} is not one DNS label (it has a dot or other characters), so its "
                "MarketApp names could collide with another source's; nothing is synced. Create the source "
                "again under a name without dots.",
            )
        try:
            source = MarketSource.model_validate(body)
            interval, note = effective_interval(source.spec.interval, self.settings.min_source_interval)
        except (ValidationError, ValueError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise _Refused("InvalidSpec", f"The spec cannot be read: {clip(detail, 200)}; fix it.") from exc
        return source, interval, note

    async def _sync(self, body: Body, source: MarketSource, status: MarketSourceStatus) -> Summary:
        meta = body["metadata"]
        name, identity = meta["name"], (meta["uid"], meta.get("generation"))
        auth = await read_credentials(self.kube, source)
        found = source_for(source, auth=auth, settings=self.settings, cache=self._cache, kube=self.kube)
        since = None
        if self._verified.get(name) == identity and status.revision:
            since = Cursor(status.revision, status.etag, status.last_modified)
        result = await found.snapshot(since)
        status.last_sync_time = datetime.now(UTC)
        if isinstance(result, Unchanged):
            status.etag, status.last_modified = result.cursor.etag, result.cursor.last_modified
            return ready_summary(source, status, changed=False)
        revision, cursor, charts = result.revision, result.cursor, result.charts
        notes, left_out = result.notes, result.skipped
        del result  # the parsed index is dropped as soon as the catalog is built
        # Olares apps keep their metadata in the archive (catalog.olares_read says which are read). A
        # git source read every manifest from its tree already: its archives are not opened again.
        if source.spec.type is not SourceType.GIT:
            read = await self._manifests.enrich(found, charts, every=source.spec.olares_manifests)
            if read.failed:
                self.events.warning(
                    body,
                    "ManifestsUnread",
                    f"{read.failed} chart archives could not be downloaded to read their OlaresManifest.yaml; "
                    "those apps show their Chart.yaml metadata until the next sync reads them.",
                )
        try:
            # Building thousands of specs takes a while: not on the event loop.
            catalog = await offload(
                catalog_from_charts, name, charts, max_apps=self.settings.max_catalog_apps
            )
        except CatalogTooLarge as exc:
            raise SourceError(
                "CatalogTooLarge", f"{exc}; split the repository or raise KUBEMART_MAX_CATALOG_APPS."
            ) from exc
        finally:
            del charts
        catalog.skipped[:0] = list(left_out)
        plan, taken = await self._apply(body, catalog)
        status.revision = revision
        status.etag, status.last_modified = cursor.etag, cursor.last_modified
        status.app_count = len(catalog.entries) - len(taken)
        self._verified[name] = identity
        self._report(body, source, catalog, plan, taken, notes)
        return ready_summary(
            source, status, changed=True, skipped=len(catalog.skipped), taken=len(taken), versions=len(notes)
        )

    async def _apply(self, source_body: Body, catalog: Catalog) -> tuple[SyncPlan, list[str]]:
        """Write what differs; the names found taken by objects this source does not control."""
        meta = source_body["metadata"]
        try:
            listed = await self.kube.list(
                MarketAppResource, labels={"kubemart.io/source": label_value(meta["name"])}
            )
        except KubeError as err:
            raise SourceError(
                "CatalogWriteFailed",
                f"Listing the catalog's MarketApps failed: {err.message}",
                retryable=True,
            ) from err
        plan = await offload(_plan, catalog, listed, meta["uid"])
        del listed  # thousands of objects: not kept while writing
        owner = {
            "apiVersion": API_VERSION,
            "kind": "MarketSource",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        try:
            conflicted = await write_plan(
                self.kube,
                plan,
                owner=owner,
                concurrency=self.settings.catalog_write_concurrency,
                deleting=self._deleting,
                not_deleted=self._own_deletes.discard,
            )
        except KubeError as err:
            raise SourceError(
                "CatalogWriteFailed",
                f"Writing the catalog failed: {clip(err.message, 300)}; will retry.",
                retryable=True,
            ) from err
        finally:
            metrics.CATALOG_WRITES.inc(plan.writes)
        return plan, sorted(plan.taken + conflicted)

    def _deleting(self, name: str) -> None:
        if len(self._own_deletes) > _MAX_OWN_DELETES:
            self._own_deletes.clear()
        self._own_deletes.add(name)

    def _report(
        self,
        body: Body,
        source: MarketSource,
        catalog: Catalog,
        plan: SyncPlan,
        taken: list[str],
        notes: tuple[str, ...] = (),
    ) -> None:
        created = len(plan.create) - (len(taken) - len(plan.taken))
        if plan.writes:
            self.events.normal(
                body,
                "CatalogSynced",
                clip(
                    f"{apps(len(catalog.entries) - len(taken))} from {source.location()}: {created} created, "
                    f"{len(plan.update)} updated, {len(plan.delete)} removed.",
                    MAX_EVENT,
                ),
            )
        if catalog.skipped:
            self.events.warning(
                body,
                "ChartsSkipped",
                clip(
                    f"{len(catalog.skipped)} charts were left out: " + "; ".join(catalog.skipped[:3]),
                    MAX_EVENT,
                ),
            )
        if catalog.ignored:
            self.events.warning(
                body,
                "DependenciesIgnored",
                clip(
                    f"{len(catalog.ignored)} kubemart.io/dependencies entries were ignored: "
                    + "; ".join(catalog.ignored[:3]),
                    MAX_EVENT,
                ),
            )
        if notes:
            self.events.warning(
                body,
                "VersionsSkipped",
                clip(f"{len(notes)} versions were left out: " + "; ".join(notes[:5]), MAX_EVENT),
            )
        if taken:
            self.events.warning(
                body,
                "NameTaken",
                clip(
                    f"{len(taken)} MarketApp names are held by objects this source does not control, so those "
                    f"apps are left out: {', '.join(taken[:5])}. Delete those objects if they are stale; the "
                    "source then restores its own.",
                    MAX_EVENT,
                ),
            )

    async def _stall(self, body: Body, status: MarketSourceStatus, reason: str, message: str) -> None:
        if await self._write_status(body, status, Summary(False, reason, message, stalled=True)):
            self.events.warning(body, reason, message)

    async def _write_status(self, body: Body, status: MarketSourceStatus, summary: Summary) -> bool:
        """Write status if anything but timestamps changed; True if Ready changed."""
        return await write_status(
            self.kube, MarketSourceResource, body, status, summary, remember=self.remember
        )


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _plan(catalog: Catalog, listed: list[Body], source_uid: str) -> SyncPlan:
    # Hashing thousands of live specs takes a while: called in a thread.
    return plan_sync(catalog, existing_of(listed, source_uid))
