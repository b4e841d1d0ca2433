"""The chart cache: archives named by their sha256, so a name is a promise about the bytes.

A file gets its digest name only once its bytes were hashed to that digest and synced to disk, by an
atomic rename in the same directory: a reader sees no file or the whole verified one. So a cache hit
for a known digest is a stat. A chart version published without a digest is remembered in memory by
URL: what was downloaded from that URL, and so which file holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HASH_BLOCK = 1024 * 1024
MAX_REMEMBERED_URLS = 10_000


def parse_digest(digest: str) -> str | None:
    """The bare hex of a sha256 digest given as in Helm indexes (hex) or as "sha256:<hex>"; None if not one."""
    hexdigest = digest.strip().lower().removeprefix("sha256:")
    return hexdigest if _SHA256_HEX.fullmatch(hexdigest) else None


class Incoming:
    """A download in progress: bytes written to a temporary file and hashed as they come."""

    def __init__(self, fh: IO[bytes], path: Path) -> None:
        self._fh = fh
        self.path = path
        self._hasher = hashlib.sha256()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self.size += len(chunk)
        await asyncio.to_thread(self._fh.write, chunk)

    @property
    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    async def sync(self) -> None:
        await asyncio.to_thread(_flush_and_sync, self._fh)


class ChartCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_url: OrderedDict[str, str] = OrderedDict()

    def path_for(self, hexdigest: str) -> Path:
        return self.root / f"{hexdigest}.tgz"

    def lookup(self, hexdigest: str) -> Path | None:
        """The cached archive with that digest, if there is one (a stat: only verified files get the name)."""
        path = self.path_for(hexdigest)
        return path if path.is_file() else None

    def remember(self, url: str, hexdigest: str) -> None:
        self._by_url[url] = hexdigest
        self._by_url.move_to_end(url)
        while len(self._by_url) > MAX_REMEMBERED_URLS:
            self._by_url.popitem(last=False)

    def recall(self, url: str) -> str | None:
        """The digest of what was last downloaded from `url` (by this process)."""
        return self._by_url.get(url)

    async def verified(self, hexdigest: str) -> Path | None:
        """The cached archive with that digest after re-hashing it; a corrupt copy is removed."""
        path = self.path_for(hexdigest)
        return path if await asyncio.to_thread(_holds, path, hexdigest) else None

    @contextlib.asynccontextmanager
    async def incoming(self) -> AsyncIterator[Incoming]:
        """A temporary file in the cache directory; removed on the way out unless `commit` renamed it."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        # Not in a thread: a cancellation between creating the file and recording its name would leak it.
        fd, name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=self.root)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield Incoming(fh, path)
        finally:
            # Synchronous on purpose: it must also run when the task is being cancelled.
            with contextlib.suppress(OSError):
                os.unlink(path)

    async def commit(self, incoming: Incoming) -> Path:
        """Give the finished download its digest name."""
        await incoming.sync()
        target = self.path_for(incoming.hexdigest)
        await asyncio.to_thread(os.replace, incoming.path, target)
        return target


def _holds(path: Path, hexdigest: str) -> bool:
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(_HASH_BLOCK):
                hasher.update(block)
    except OSError:
        return False
    if hasher.hexdigest() == hexdigest:
        return True
    with contextlib.suppress(OSError):
        path.unlink()
    return False


def _flush_and_sync(fh: IO[bytes]) -> None:
    # Without fsync a crash could leave a digest-named file with missing bytes.
    fh.flush()
    os.fsync(fh.fileno())
