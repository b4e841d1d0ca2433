"""The git source: a repository of chart directories and app definitions, behind the sources seam.

Revision = the commit. `snapshot` asks the remote which commit the ref names (one `git ls-remote`); the
same commit as the cursor is Unchanged and nothing more happens. Otherwise that commit is fetched at
depth 1 into a bare cache repository (one per URL, under the chart cache), its tree listed, the files
of its apps read with one `git cat-file --batch` per batch, and every app packaged into the chart cache
so its digest is known to the catalog. `fetch` finds an archive in the cache by digest; on a miss (a
new process, a cleaned cache) it packages that app again from the commit of the last good sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kubemart.domain.clip import clip
from kubemart.models.marketapp import AppVersion
from kubemart.models.marketsource import DefinitionPolicy, GitRef
from kubemart.sources.base import ChartFetchError, Cursor, Snapshot, SourceError, Unchanged
from kubemart.sources.cache import ChartCache, parse_digest
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.git import remote
from kubemart.sources.git.build import BuildLimits, Built, batches, build
from kubemart.sources.git.layout import find_layout
from kubemart.sources.git.runner import GitEnv, git_env
from kubemart.sources.offload import offload

_LOCKS: dict[Path, asyncio.Lock] = {}
BATCH_BYTES = 32 * 1024 * 1024
"""Chart files read into memory at once."""


@dataclass(frozen=True)
class GitLimits:
    deadline: float = 120.0
    """Seconds one git command may take (ls-remote, fetch) before it is killed."""
    max_bytes: int = 256 * 1024 * 1024
    """Largest cache repository; a fetch that grows past it is killed."""
    max_files: int = 50_000
    """Most files under spec.path."""
    build: BuildLimits = field(default_factory=BuildLimits)


@dataclass(frozen=True)
class GitSpec:
    url: str
    ref: GitRef | None = None
    path: str | None = None
    definitions: DefinitionPolicy | None = None


class GitSource:
    def __init__(
        self,
        spec: GitSpec,
        *,
        revision: str | None,
        auth: RepoAuth | None,
        cache: ChartCache,
        limits: GitLimits | None = None,
    ) -> None:
        self.spec = spec
        self._revision = revision
        """The commit of the last good sync: where `fetch` packages an app again on a cache miss."""
        self._auth = auth
        self._cache = cache
        self._limits = limits or GitLimits()
        key = hashlib.sha256(spec.url.encode()).hexdigest()[:24]
        self._repo = cache.root / "git" / key

    def _lock(self) -> asyncio.Lock:
        return _LOCKS.setdefault(self._repo, asyncio.Lock())

    async def snapshot(self, since: Cursor | None) -> Snapshot | Unchanged:
        limits = self._limits
        async with git_env(self.spec.url, self._auth) as genv:
            commit = await remote.resolve(genv, self.spec.url, self.spec.ref, deadline=limits.deadline)
            if since is not None and since.revision == commit:
                return Unchanged(Cursor(commit))
            async with self._lock():
                built = await self._build(genv, commit, only=None)
        await offload(_store, self._cache, built.archives)
        return Snapshot(revision=commit, charts=built.charts, cursor=Cursor(commit), notes=tuple(built.notes))

    async def _build(self, genv: GitEnv, commit: str, only: str | None) -> Built:
        """The apps of `commit` under spec.path (or only the one at the path `only`)."""
        limits = self._limits
        await remote.fetch(
            genv,
            self._repo,
            self.spec.url,
            commit,
            self.spec.ref,
            deadline=limits.deadline,
            max_bytes=limits.max_bytes,
        )
        root = only in (".", "")  # a chart directory at the top of the tree
        path = (None if root else only) if only is not None else self.spec.path
        tree = await remote.list_tree(
            genv, self._repo, commit, path, deadline=limits.deadline, max_files=limits.max_files
        )
        layout = await offload(find_layout, tree)
        del tree
        if only is not None:
            # The app at `only`: that chart directory, or that definition file alone.
            wanted = "" if root else only.strip("/")
            layout.charts = {d: f for d, f in layout.charts.items() if d == wanted}
            layout.definitions = [e for e in layout.definitions if e.path == only]
        built = Built()
        bl = limits.build
        # Chart directories a batch at a time, then the definitions (small files) in one go.
        groups = [g for g in batches(layout.charts, BATCH_BYTES) if g]
        if layout.definitions:
            groups.append({})
        for group in groups:
            definitions = [] if group else layout.definitions
            oids = [e.oid for files in group.values() for e in files if e.size <= bl.chart_max_bytes]
            oids += [e.oid for e in definitions if e.size <= bl.max_file_bytes]
            total = sum(e.size for files in group.values() for e in files if e.size <= bl.chart_max_bytes)
            blobs = await remote.read_blobs(
                genv,
                self._repo,
                oids,
                deadline=limits.deadline,
                max_total=total + sum(e.size for e in definitions) + 1024,
            )
            await offload(build, group, definitions, blobs, self.spec.definitions, bl, built)
            del blobs
        return built

    def cached(self, version: AppVersion) -> Path | None:
        hexdigest = parse_digest(version.digest) if version.digest else None
        return self._cache.lookup(hexdigest) if hexdigest else None

    async def fetch(self, version: AppVersion) -> Path:
        found = self.cached(version)
        if found is not None:
            return found
        hexdigest = parse_digest(version.digest) if version.digest else None
        if hexdigest is None or not version.urls:
            raise ChartFetchError(
                "ChartDigestInvalid",
                f"Version {version.version} has no digest or path in the catalog; re-sync the source.",
            )
        if self._revision is None:
            raise ChartFetchError(
                "ChartDownloadFailed", "The source has not synced a commit yet; will retry.", retryable=True
            )
        where = version.urls[0]
        try:
            async with git_env(self.spec.url, self._auth) as genv, self._lock():
                built = await self._build(genv, self._revision, only=where)
        except SourceError as err:
            raise ChartFetchError(err.reason, err.message, retryable=err.retryable) from err
        if hexdigest not in built.archives:
            why = "; ".join(built.notes[:1]) or "it is no longer at that path"
            raise ChartFetchError(
                "ChartDigestMismatch",
                clip(
                    f"Version {version.version} at {where} of commit {self._revision[:12]} does not package to "
                    f"the digest in the catalog ({why}); re-sync the source.",
                    500,
                ),
                retryable=True,
            )
        await offload(_store, self._cache, {hexdigest: built.archives[hexdigest]})
        path = self._cache.lookup(hexdigest)
        if path is None:
            raise ChartFetchError(
                "ChartCacheError", "The chart cache could not keep the archive.", retryable=True
            )
        return path


def _store(cache: ChartCache, archives: dict[str, bytes]) -> None:
    """Each archive under its digest name: written, synced, renamed (the cache's promise)."""
    if not archives:
        return
    cache.root.mkdir(parents=True, exist_ok=True)
    for hexdigest, data in archives.items():
        target = cache.path_for(hexdigest)
        if target.is_file():
            continue
        fd, name = tempfile.mkstemp(prefix=".git-", suffix=".part", dir=cache.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(name, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)
