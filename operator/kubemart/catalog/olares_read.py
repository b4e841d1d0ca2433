"""Olares manifests read from chart archives during a catalog sync, once per digest.

An Olares app's metadata is in OlaresManifest.yaml inside its archive, and a Helm index says nothing
of it: the 347 charts of beclab/apps carry no annotation, keyword or field that marks them. Reading
every archive of a plain repository would turn a first sync of 5,000 charts into 5,000 downloads, so
an archive is read only when
- the source says its charts may be Olares apps (`spec.olaresManifests: true`), or
- the chart's index entry is annotated `kubemart.io/manifest: olares`, or
- the archive is already in the chart cache (an installed app): a stat, then a local read.
Only the newest version (the one the catalog's metadata comes from) is read, with at most
`manifest_read_concurrency` downloads at once, each bounded like any chart download, and the result
(a manifest or "none") is kept by digest in memory: a re-sync of the same digests reads nothing. A
download that fails is not remembered, so the next full sync tries again; the chart keeps its
Chart.yaml metadata meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from kubemart.catalog.entries import ANNOTATION_PREFIX, head_version
from kubemart.catalog.olares import MANIFEST_KEY
from kubemart.models.marketapp import AppVersion
from kubemart.sources.archive import olares_manifest
from kubemart.sources.base import ChartVersions, Source, SourceError
from kubemart.sources.cache import parse_digest
from kubemart.sources.offload import offload

MAX_REMEMBERED = 20_000
"""Digests whose manifest (slimmed) or absence is kept."""
MAX_REMEMBERED_BYTES = 64 * 1024 * 1024
"""What the kept manifests may weigh in all, as JSON; the oldest go first."""
_MAX_TEXT = 2048
"""Characters kept of one string of a manifest (the MarketApp's longest bound)."""
_MAX_ITEMS = 20
_MAX_KEYS = 40
_UNKNOWN: Any = object()
SIGNAL = f"{ANNOTATION_PREFIX}manifest"
# What the catalog maps; the long texts (fullDescription, upgradeDescription, images) are not kept.
_SPEC_KEYS = (
    "developer", "website", "sourceCode", "doc", "license", "supportArch",
    "requiredCpu", "requiredMemory", "requiredDisk", "requiredGpu",
    "limitedCpu", "limitedMemory", "limitedDisk", "limitedGpu",
)  # fmt: skip


@dataclass
class ReadStats:
    read: int = 0
    """Archives opened (downloaded or from the cache)."""
    remembered: int = 0
    """Charts whose digest was known already."""
    failed: int = 0
    """Downloads that failed (tried again at the next full sync)."""


def _bounded(value: Any, depth: int = 0) -> Any:
    """`value` with strings cut, lists and maps capped and nesting stopped: what mapping can use."""
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if depth >= 4:
        return None
    if isinstance(value, list):
        return [_bounded(v, depth + 1) for v in value[:_MAX_ITEMS]]
    if isinstance(value, dict):
        return {str(k)[:64]: _bounded(v, depth + 1) for k, v in list(value.items())[:_MAX_KEYS]}
    return value if isinstance(value, bool | int | float) or value is None else str(value)[:_MAX_TEXT]


def slim(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the catalog maps, bounded; the long texts (fullDescription, upgradeDescription, images) go."""
    spec: dict[str, Any] = manifest.get("spec") or {}
    options: dict[str, Any] = manifest.get("options") or {}
    spec, options = (spec if isinstance(spec, dict) else {}), (options if isinstance(options, dict) else {})
    return {
        "metadata": _bounded(manifest.get("metadata")),
        "spec": _bounded({k: spec[k] for k in _SPEC_KEYS if k in spec}),
        "entrances": _bounded(manifest.get("entrances")),
        "options": {"dependencies": _bounded(options.get("dependencies"))},
    }


def signalled(head: dict[str, Any]) -> bool:
    annotations = head.get("annotations")
    return isinstance(annotations, dict) and annotations.get(SIGNAL) == "olares"


class ManifestReader:
    def __init__(self, concurrency: int = 4) -> None:
        self._concurrency = concurrency
        self._known: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0

    def _remember(self, digest: str, manifest: dict[str, Any] | None) -> None:
        size = len(json.dumps(manifest, default=str)) if manifest is not None else 0
        self._forget(digest)
        self._known[digest], self._sizes[digest] = manifest, size
        self._bytes += size
        while len(self._known) > MAX_REMEMBERED or self._bytes > MAX_REMEMBERED_BYTES:
            self._forget(next(iter(self._known)))

    def _forget(self, digest: str) -> None:
        if digest in self._known:
            del self._known[digest]
            self._bytes -= self._sizes.pop(digest, 0)

    def _select(
        self, source: Source, charts: ChartVersions, every: bool, stats: ReadStats
    ) -> list[tuple[dict[str, Any], AppVersion, str]]:
        """The archives to read; known digests get their manifest at once (called in a thread)."""
        todo: list[tuple[dict[str, Any], AppVersion, str]] = []
        for entries in charts.values():
            head = head_version(entries)
            if head is None or MANIFEST_KEY in head:
                continue  # a git source put it there already
            digest = parse_digest(head["digest"]) if isinstance(head.get("digest"), str) else None
            if digest is None:
                continue  # nothing to remember it by
            # One lookup: the event loop may forget a digest while this runs in a thread.
            known = self._known.get(digest, _UNKNOWN)
            if known is not _UNKNOWN:
                stats.remembered += 1
                if known is not None:
                    head[MANIFEST_KEY] = known
                continue
            urls = head.get("urls")
            try:
                version = AppVersion(
                    version=str(head.get("version")),
                    digest=head["digest"],
                    urls=[u for u in urls if isinstance(u, str)][:5] if isinstance(urls, list) else [],
                )
            except ValueError:
                continue  # out of bounds: the catalog leaves its metadata out too
            if every or signalled(head) or source.cached(version) is not None:
                todo.append((head, version, digest))
        return todo

    async def enrich(self, source: Source, charts: ChartVersions, *, every: bool) -> ReadStats:
        """Put each qualifying chart's manifest into its newest version's entry under `olaresManifest`."""
        stats = ReadStats()
        # Choosing the newest version of thousands of charts takes a while: not on the event loop.
        todo = await offload(self._select, source, charts, every, stats)

        gate = asyncio.Semaphore(self._concurrency)

        async def read(head: dict[str, Any], version: AppVersion, digest: str) -> None:
            async with gate:
                try:
                    path = await source.fetch(version)
                except SourceError:
                    stats.failed += 1
                    return
                manifest = await asyncio.to_thread(olares_manifest, path)
            stats.read += 1
            found = slim(manifest) if manifest is not None else None
            self._remember(digest, found)
            if found is not None:
                head[MANIFEST_KEY] = found

        await asyncio.gather(*(read(*item) for item in todo))
        return stats
