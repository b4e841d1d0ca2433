"""The sources seam: what every kind of catalog source (helm HTTP today; OCI, git, upload next) provides.

A source answers two questions. `snapshot(since)`: what the catalog is now, or that it is unchanged
since the last good snapshot, which must cost one cheap request (an HTTP 304, a `git ls-remote`, an
OCI manifest HEAD) so that an idle catalog costs nothing but that. `fetch(version)`: a local path
to that chart version's archive in the digest-addressed cache. The catalog sync and the release
engine speak only to this seam; a source speaks only to its own outside system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kubemart.models.marketapp import AppVersion

ChartVersions = dict[str, list[dict[str, Any]]]
"""Chart name -> its versions, each the chart's Chart.yaml fields as a Helm index entry has them,
plus `urls`, `digest` and `created`; `catalog.entries` turns them into MarketApp specs."""


class SourceError(Exception):
    """A source could not answer. `reason` is CamelCase for conditions, `message` one sentence that says
    what is wrong and what to do (never a credential), `retryable` whether trying again later may help.
    """

    def __init__(self, reason: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, retryable={self.retryable}, message={self.message!r})"


class ChartFetchError(SourceError):
    """A chart version could not be fetched.

    retryable False: it cannot work until the catalog or the source changes (a file:// URL, a digest
    mismatch or an invalid digest, a chart over the size limit, no URL at all); True: retry with backoff.
    """


@dataclass(frozen=True)
class Cursor:
    """Where the last good snapshot was taken; a source says "unchanged" against it cheaply.

    `revision` is what identifies a catalog's content for every kind of source (sha256 of a Helm
    index, a git commit, an OCI digest); the validators are HTTP's, for sources that have them.
    """

    revision: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The whole catalog as the source has it now."""

    revision: str
    charts: ChartVersions = field(repr=False)
    cursor: Cursor
    """What to pass as `since` next time."""
    notes: tuple[str, ...] = ()
    """Versions the source left out, each with why (an OCI tag that is not semver): said in an Event."""
    skipped: tuple[str, ...] = ()
    """Charts the source itself left out (unreadable, duplicated), each with why, for the ChartsSkipped Event."""


@dataclass(frozen=True)
class Unchanged:
    """Nothing changed since the cursor given: the last good catalog stands."""

    cursor: Cursor


class Source(Protocol):
    """One catalog source, built for one MarketSource's spec and credentials."""

    async def snapshot(self, since: Cursor | None) -> Snapshot | Unchanged:
        """The catalog now, or Unchanged when it is what `since` describes. Raises SourceError."""
        ...

    async def fetch(self, version: AppVersion) -> Path:
        """That version's chart archive, from the cache or downloaded and verified. Raises ChartFetchError."""
        ...

    def cached(self, version: AppVersion) -> Path | None:
        """That version's archive when the cache already holds it; no I/O but a stat."""
        ...
