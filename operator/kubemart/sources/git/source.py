"""The git source: a repository of chart directories and app definitions, behind the sources seam.

Revision = the commit. `snapshot` asks the remote which commit the ref names (one `git ls-remote`); the
same commit as the cursor is Unchanged and nothing more happens. Otherwise that commit is fetched at
depth 1 into a bare cache repository (one per URL, under the chart cache), its tree listed, the files
of its apps read with one `git cat-file --batch` per batch, and every app packaged into the chart cache
so its digest is known to the catalog (an app whose directory or file is unchanged since an earlier
commit is not packaged again: its tree oid names its content). `fetch` finds an archive in the cache by digest; on a miss (a
new process, a cleaned cache) it packages that app again from the commit of the last good sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections import OrderedDict
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
from kubemart.sources.git.layout import Layout, find_layout, relative
from kubemart.sources.git.remote import TreeEntry
from kubemart.sources.git.runner import GitEnv, git_env
from kubemart.sources.offload import offload

_LOCKS: dict[Path, asyncio.Lock] = {}
_MEMO: OrderedDict[tuple[str, str], str] = OrderedDict()
"""(tree or blob oid, context) -> digest of the archive packaged from it: a new commit re-packages
only the apps whose content changed."""
MAX_MEMO = 50_000
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
        self.packaged = 0
        """Apps packaged by the last sync (the others were unchanged and found in the cache)."""

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
        return Snapshot(
            revision=commit, charts=built.charts, cursor=Cursor(commit), skipped=tuple(built.notes)
        )

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
        if not tree and path:
            raise SourceError(
                "GitPathNotFound",
                f"Commit {commit[:12]} has nothing under {clip(path, 200)}; fix spec.path.",
                retryable=True,
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
        context = self._context()
        known = self._known(layout, context) if only is None else {}
        # Chart directories a batch at a time, then the definitions (small files) in one go.
        groups = [g for g in batches(layout.charts, BATCH_BYTES) if g]
        if layout.definitions:
            groups.append({})
        for group in groups:
            definitions = [] if group else layout.definitions
            oids = [
                e.oid
                for d, files in group.items()
                for e in _needed(d, files, known)
                if e.size <= bl.chart_max_bytes
            ]
            oids += [e.oid for e in definitions if e.size <= bl.max_file_bytes]
            total = sum(e.size for files in group.values() for e in files if e.size <= bl.chart_max_bytes)
            blobs = await remote.read_blobs(
                genv,
                self._repo,
                oids,
                deadline=limits.deadline,
                max_total=total + sum(e.size for e in definitions) + 1024,
            )
            await offload(build, group, definitions, blobs, self.spec.definitions, bl, built, known)
            del blobs
        self.packaged = len(built.made)
        oid_of = {e.path: e.oid for e in layout.definitions} | {d or ".": o for d, o in layout.trees.items()}
        for where, digest in built.made.items():
            if where in oid_of:
                _MEMO[(oid_of[where], context)] = digest
                _MEMO.move_to_end((oid_of[where], context))
        while len(_MEMO) > MAX_MEMO:
            _MEMO.popitem(last=False)
        return built

    def _context(self) -> str:
        """What besides the content decides an app's archive, or whether it is left out."""
        policy = self.spec.definitions.model_dump_json() if self.spec.definitions else ""
        return f"{policy}|{self._limits.build.chart_max_bytes}|{self._limits.build.max_file_bytes}"

    def _known(self, layout: Layout, context: str) -> dict[str, str]:
        """Where -> digest, for apps packaged before from the same content and still in the cache."""
        known: dict[str, str] = {}
        candidates = [(d or ".", layout.trees.get(d)) for d in layout.charts]
        candidates += [(e.path, e.oid) for e in layout.definitions]
        for where, oid in candidates:
            digest = _MEMO.get((oid, context)) if oid else None
            if digest is not None and self._cache.lookup(digest) is not None:
                known[where] = digest
        return known

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


def _needed(directory: str, files: list[TreeEntry], known: dict[str, str]) -> list[TreeEntry]:
    """The files to read of a chart directory: all of them, or only its metadata when already packaged."""
    if (directory or ".") not in known:
        return files
    return [e for e in files if relative(e.path, directory) in ("Chart.yaml", "OlaresManifest.yaml")]


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
