"""The upload source: the labelled Secrets of the one namespace its spec names (docs/sources/upload.md).

snapshot: one metadata-only list of the stored charts; its (name, uid, resourceVersion) triples are
the revision, so an unchanged catalog costs that one request and nothing else. Archives are read
only for objects not read before by this process (a GET each, or a paged list when many are new),
checked off the event loop, and remembered by (uid, resourceVersion). fetch: the archive from its
Secret in that namespace, hashed against the digest the catalog lists before the cache takes it.
The namespace is the source's own: nothing a MarketApp or a stored object says can point it elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from lightkube.resources.core_v1 import Secret

from kubemart.adapters.kube import Kube, KubeError
from kubemart.adapters.metadata import list_secret_metadata, stream_secrets
from kubemart.domain.chart_archive import ArchiveLimits, InvalidChart
from kubemart.domain.clip import clip
from kubemart.domain.upload_storage import UPLOAD_LABEL, UPLOAD_LABEL_VALUE
from kubemart.models.marketapp import AppVersion
from kubemart.sources.base import ChartFetchError, Cursor, Snapshot, SourceError, Unchanged
from kubemart.sources.cache import ChartCache, parse_digest
from kubemart.sources.offload import offload
from kubemart.sources.upload.stored import Stored, archive_of, assemble, key_of, read_stored

LABELS = {UPLOAD_LABEL: UPLOAD_LABEL_VALUE}
MAX_REMEMBERED = 20_000
_GETS = 20
"""Up to this many new objects are read with a GET each; more with a paged list."""
_PAGE = 20
"""Objects per page of that list: at most 20 MiB of archives in memory at once."""
_PARALLEL_GETS = 8

_READ: OrderedDict[tuple[str, str, str], Stored] = OrderedDict()
"""(namespace, uid, resourceVersion) -> what that object held: a write changes the key, so no stale read."""


def _remember(key: tuple[str, str, str], stored: Stored) -> None:
    _READ[key] = stored
    _READ.move_to_end(key)
    while len(_READ) > MAX_REMEMBERED:
        _READ.popitem(last=False)


def revision_of(namespace: str, metas: list[dict[str, Any]]) -> str:
    lines = sorted(f"{m.get('name')} {m.get('uid')} {m.get('resourceVersion')}" for m in metas)
    return hashlib.sha256("\n".join([namespace, *lines]).encode()).hexdigest()


class UploadSource:
    def __init__(
        self, namespace: str, *, kube: Kube, cache: ChartCache, limits: ArchiveLimits | None = None
    ) -> None:
        self.namespace = namespace
        self._kube = kube
        self._cache = cache
        self._limits = limits or ArchiveLimits()

    async def snapshot(self, since: Cursor | None) -> Snapshot | Unchanged:
        try:
            metas = await list_secret_metadata(self._kube, self.namespace, LABELS)
        except KubeError as err:
            raise self._unreadable(err) from err
        revision = revision_of(self.namespace, metas)
        if since is not None and since.revision == revision:
            return Unchanged(since)
        stored = await self._read(metas)
        charts, notes = assemble(stored)
        return Snapshot(revision=revision, charts=charts, cursor=Cursor(revision), skipped=tuple(notes))

    async def _read(self, metas: list[dict[str, Any]]) -> list[Stored]:
        ns = self.namespace
        missing = [m for m in metas if (ns, *key_of(m)) not in _READ]
        by_uid: dict[str, Stored] = {}
        try:
            if len(missing) <= _GETS:
                gate = asyncio.Semaphore(_PARALLEL_GETS)

                async def one(name: str) -> None:
                    async with gate:
                        body = await self._kube.get(Secret, name, ns)
                    if body is not None:
                        await self._take(body, by_uid)

                await asyncio.gather(*(one(str(m.get("name"))) for m in missing))
            else:
                async for body in stream_secrets(self._kube, ns, LABELS, page=_PAGE):
                    await self._take(body, by_uid)
        except KubeError as err:
            raise self._unreadable(err) from err
        out: list[Stored] = []
        for m in metas:
            found = _READ.get((ns, *key_of(m))) or by_uid.get(key_of(m)[0])
            if found is not None:  # else deleted since the list: the next sync sees it gone
                out.append(found)
        return out

    async def _take(self, body: dict[str, Any], by_uid: dict[str, Stored]) -> None:
        meta = body.get("metadata") or {}
        stored = await offload(read_stored, body, self._limits)
        _remember((self.namespace, *key_of(meta)), stored)
        by_uid[key_of(meta)[0]] = stored

    def _unreadable(self, err: KubeError) -> SourceError:
        what = f"The stored charts in namespace {self.namespace} cannot be read: {clip(err.message, 300)}"
        if err.status in (401, 403):
            what += (
                "; the operator needs get, list and watch on secrets there (in namespaced mode, add the "
                "namespace to the chart's watchNamespaces)"
            )
        return SourceError("StorageUnreadable", what + ".", retryable=True)

    def cached(self, version: AppVersion) -> Path | None:
        hexdigest = parse_digest(version.digest or "")
        return self._cache.lookup(hexdigest) if hexdigest else None

    async def fetch(self, version: AppVersion) -> Path:
        hexdigest = parse_digest(version.digest or "")
        if hexdigest is None or not version.urls:
            raise ChartFetchError(
                "ChartDigestMissing",
                f"The catalog lists no stored object and digest for version {version.version}; the source's "
                "next sync rewrites it.",
            )
        if hit := self._cache.lookup(hexdigest):
            return hit
        name = version.urls[0]
        where = f"Secret {clip(name, 253)} in namespace {self.namespace}"
        try:
            body = await self._kube.get(Secret, name, self.namespace)
        except KubeError as err:
            raise ChartFetchError(
                "ChartDownloadFailed", f"{where} cannot be read: {clip(err.message, 300)}", retryable=True
            ) from err
        if body is None:
            raise ChartFetchError(
                "UploadedChartNotFound",
                f"{where} that stored version {version.version} is gone; upload the chart again.",
            )
        try:
            data = archive_of(body, self._limits)
        except InvalidChart as exc:
            raise ChartFetchError("InvalidStoredChart", f"{where} cannot be used: {exc}.") from exc
        if hashlib.sha256(data).hexdigest() != hexdigest:
            raise ChartFetchError(
                "ChartDigestMismatch",
                f"{where} no longer holds the archive the catalog lists for version {version.version} (it was "
                "replaced); the source's next sync lists what it holds now.",
            )
        async with self._cache.incoming() as incoming:
            await incoming.write(data)
            return await self._cache.commit(incoming)
