"""Charts for the release engine: a chart version of a MarketSource, as a local archive.

`cached` is for the reconcile's observe step (no I/O but a stat); `fetch` downloads when needed and
says, through `ChartFetchError.retryable`, whether an AppInstall should retry or is Stalled until
the catalog or the source changes.
"""

from __future__ import annotations

from pathlib import Path

from kubemart.adapters.kube import Kube
from kubemart.models.marketapp import AppVersion
from kubemart.models.marketsource import MarketSource
from kubemart.runtime.settings import Settings
from kubemart.sources.base import ChartFetchError, Source, SourceError
from kubemart.sources.cache import ChartCache
from kubemart.sources.credentials import RepoAuth, read_credentials
from kubemart.sources.registry import source_for


class Charts:
    def __init__(self, kube: Kube, cache_dir: Path, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._cache = ChartCache(cache_dir)

    def cached(self, source: MarketSource, version: AppVersion) -> Path | None:
        """The archive of `version` when the cache holds it; None otherwise (then call `fetch`)."""
        try:
            found = self._source(source, auth=None)  # credentials do not change what a digest names
        except SourceError:
            return None
        return found.cached(version)

    async def fetch(self, source: MarketSource, version: AppVersion) -> Path:
        """The archive of `version`, downloaded and verified unless cached. Raises ChartFetchError."""
        try:
            auth = await read_credentials(self._kube, source)
            found = self._source(source, auth=auth)
        except SourceError as err:
            raise ChartFetchError(err.reason, err.message, retryable=err.retryable) from err
        return await found.fetch(version)

    def _source(self, source: MarketSource, *, auth: RepoAuth | None) -> Source:
        return source_for(source, auth=auth, settings=self._settings, cache=self._cache, kube=self._kube)
