"""The helm HTTP source: a chart repository that serves index.yaml, behind the sources seam."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kubemart.models.marketapp import AppVersion
from kubemart.sources.base import ChartFetchError, Cursor, Snapshot, Unchanged
from kubemart.sources.cache import ChartCache, parse_digest
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.helm_http.client import (
    DEFAULT_DEADLINE,
    chart_auth,
    download_chart,
    fetch_index,
    make_client,
    resolve_chart_url,
)
from kubemart.sources.helm_http.errors import RepoError, safe_url
from kubemart.sources.helm_http.index import IndexLimits, parse_index
from kubemart.sources.helm_http.provenance import download_provenance, provenance_url
from kubemart.sources.offload import offload
from kubemart.sources.verify.provenance import MAX_PROVENANCE_BYTES, Provenance, archive_name


@dataclass(frozen=True)
class HttpLimits:
    index_max_bytes: int = 64 * 1024 * 1024
    """Largest index accepted, decoded."""
    chart_max_bytes: int = 20 * 1024 * 1024
    deadline: float = DEFAULT_DEADLINE
    """Seconds for a whole request (connect, headers and body), index or chart."""
    index: IndexLimits = field(default_factory=IndexLimits)


class HelmHttpSource:
    def __init__(
        self, url: str, *, auth: RepoAuth | None, cache: ChartCache, limits: HttpLimits | None = None
    ) -> None:
        self.url = url
        self._auth = auth
        self._cache = cache
        self._limits = limits or HttpLimits()

    async def snapshot(self, since: Cursor | None) -> Snapshot | Unchanged:
        """One GET of index.yaml, conditional on `since`; the index is read in a thread."""
        async with make_client(auth=self._auth) as client:
            fetched = await fetch_index(
                client,
                self.url,
                etag=since.etag if since else None,
                last_modified=since.last_modified if since else None,
                auth=self._auth,
                max_bytes=self._limits.index_max_bytes,
                deadline=self._limits.deadline,
            )
        if fetched.not_modified and since is not None:
            return Unchanged(Cursor(since.revision, fetched.etag, fetched.last_modified))
        assert fetched.body is not None
        assert fetched.digest is not None
        cursor = Cursor(fetched.digest, fetched.etag, fetched.last_modified)
        if since is not None and fetched.digest == since.revision:
            return Unchanged(cursor)  # a server without validators: same bytes, nothing to read
        charts = await offload(parse_index, fetched.body, self._limits.index)
        return Snapshot(revision=fetched.digest, charts=charts, cursor=cursor)

    def cached(self, version: AppVersion) -> Path | None:
        if version.digest is not None:
            hexdigest = parse_digest(version.digest)
        elif version.urls:
            hexdigest = self._cache.recall(resolve_chart_url(self.url, version.urls[0]))
        else:
            hexdigest = None
        return self._cache.lookup(hexdigest) if hexdigest else None

    async def fetch(self, version: AppVersion) -> Path:
        if not version.urls:
            raise ChartFetchError(
                "ChartURLMissing",
                f"The catalog lists no download URL for version {version.version}; the repository's index "
                "is incomplete, so ask its maintainer to rebuild it.",
            )
        url = resolve_chart_url(self.url, version.urls[0])
        try:
            async with make_client(auth=self._auth) as client:
                return await download_chart(
                    client,
                    url,
                    expected_digest=version.digest,
                    cache=self._cache,
                    auth=chart_auth(self.url, url, self._auth),
                    max_bytes=self._limits.chart_max_bytes,
                    deadline=self._limits.deadline,
                )
        except RepoError as err:
            raise ChartFetchError(err.reason, err.message, retryable=err.retryable) from err

    async def provenance(self, version: AppVersion, *, app: str) -> Provenance:
        """The version's provenance file, fetched as its chart is (client, bounds, credentials)."""
        if not version.urls:
            raise ChartFetchError(
                "ChartURLMissing", f"The catalog lists no download URL for version {version.version}."
            )
        url = resolve_chart_url(self.url, version.urls[0])
        try:
            async with make_client(auth=self._auth) as client:
                data = await download_provenance(
                    client,
                    url,
                    auth=chart_auth(self.url, url, self._auth),
                    max_bytes=MAX_PROVENANCE_BYTES,
                    deadline=self._limits.deadline,
                )
        except RepoError as err:
            raise ChartFetchError(err.reason, err.message, retryable=err.retryable) from err
        return Provenance(
            filename=archive_name(url, app, version.version),
            url=safe_url(provenance_url(url)),
            data=data,
        )
