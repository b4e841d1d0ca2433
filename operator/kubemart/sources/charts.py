"""Charts of a catalog's versions, fetched into a digest-addressed local cache."""

from __future__ import annotations

from pathlib import Path

from kubemart.adapters import chart_repo
from kubemart.adapters.kube import Kube
from kubemart.models.marketapp import AppVersion
from kubemart.models.marketsource import MarketSource
from kubemart.runtime.settings import Settings
from kubemart.services.problems import Problem
from kubemart.services.source_auth import source_auth


class ChartFetchError(Exception):
    """`retryable` False: cannot work until the catalog or the source changes."""

    def __init__(self, reason: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


_PERMANENT = {"ChartDigestMismatch", "ChartDigestInvalid", "ChartTooLarge", "InvalidRepositoryURL"}


class Charts:
    def __init__(self, kube: Kube, cache_dir: Path, settings: Settings) -> None:
        self.kube = kube
        self.cache_dir = cache_dir
        self.settings = settings
        self._by_url: dict[str, Path] = {}

    def cached(self, source: MarketSource, version: AppVersion) -> Path | None:
        digest = (version.digest or "").lower().removeprefix("sha256:")
        if digest:
            path = self.cache_dir / f"{digest}.tgz"
            return path if path.is_file() else None
        url = self._url(source, version)
        found = self._by_url.get(url) if url else None
        return found if found is not None and found.is_file() else None

    async def fetch(self, source: MarketSource, version: AppVersion) -> Path:
        url = self._url(source, version)
        if url is None:
            raise ChartFetchError(
                "ChartDownloadFailed",
                f"The catalog lists no download URL for version {version.version}.",
                retryable=False,
            )
        try:
            auth = await source_auth(self.kube, source)
        except Problem as problem:
            raise ChartFetchError(problem.reason, problem.message, retryable=True) from None
        try:
            async with chart_repo.make_client(auth=auth) as client:
                path = await chart_repo.download_chart(
                    client,
                    url,
                    expected_digest=version.digest,
                    cache_dir=self.cache_dir,
                    auth=chart_repo.chart_auth(source.spec.url, url, auth),
                )
        except chart_repo.RepoError as err:
            permanent = err.reason in _PERMANENT or (
                err.reason == "ChartDownloadFailed" and not err.retryable and "not an http" in err.message
            )
            raise ChartFetchError(
                "ChartDownloadFailed" if not permanent else err.reason,
                err.message if permanent else f"{err.message} Will retry.",
                retryable=not permanent,
            ) from err
        if not version.digest:
            self._by_url[url] = path
        return path

    @staticmethod
    def _url(source: MarketSource, version: AppVersion) -> str | None:
        if not version.urls:
            return None
        return chart_repo.resolve_chart_url(source.spec.url, version.urls[0])
