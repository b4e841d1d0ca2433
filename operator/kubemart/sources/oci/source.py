"""The OCI source: Helm charts in an OCI registry (`oci://host[:port]/path`), behind the sources seam.

A version's `digest` is its manifest's digest and its url `oci://host/repository@<digest>`: an
install asks for exactly what the catalog listed. `fetch` reads the chart layer's digest from the
manifest (remembered from the sync, else one GET checked against the digest), then downloads that
layer into the digest-addressed cache, checked against its sha256 and bounded in size.

`verify_cosign` (the `CosignChecked` hook `Charts` calls for `verify.provider: cosign`) has the cosign
CLI check the same manifest digest against the trusted key, with this source's credentials and CA.
"""

from __future__ import annotations

from pathlib import Path

from kubemart.models.marketapp import AppVersion
from kubemart.sources.base import ChartFetchError, Cursor, Snapshot, SourceError, Unchanged
from kubemart.sources.cache import ChartCache, parse_digest
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.helm_http.errors import safe_url
from kubemart.sources.oci.catalog import MEMO, read_catalog, read_manifest
from kubemart.sources.oci.client import Limits, RegistryClient
from kubemart.sources.oci.reference import InvalidReference, Registry, parse_chart_url, parse_registry
from kubemart.sources.verify.cosign import CosignResult, verify_cosign
from kubemart.sources.verify.errors import VerificationError


class OciSource:
    def __init__(
        self,
        url: str,
        *,
        charts: list[str],
        auth: RepoAuth | None,
        cache: ChartCache,
        limits: Limits | None = None,
        cosign: str = "cosign",
    ) -> None:
        try:
            self.registry: Registry = parse_registry(url)
        except InvalidReference as exc:
            raise SourceError(
                "InvalidRepositoryURL", f"{safe_url(url)} is not a usable oci:// URL: {exc}; fix spec.url."
            ) from None
        self._charts = charts
        self._auth = auth
        self._cache = cache
        self._limits = limits or Limits()
        self._cosign = cosign

    def _client(self) -> RegistryClient:
        return RegistryClient(self.registry, self._auth, self._limits)

    async def snapshot(self, since: Cursor | None) -> Snapshot | Unchanged:
        async with self._client() as client:
            listing = await read_catalog(client, self._charts)
        cursor = Cursor(listing.revision)
        if since is not None and since.revision == listing.revision:
            return Unchanged(cursor)
        return Snapshot(
            revision=listing.revision, charts=listing.charts, cursor=cursor, notes=tuple(listing.notes)
        )

    def cached(self, version: AppVersion) -> Path | None:
        try:
            _, digest = self._reference(version)
        except ChartFetchError:
            return None
        manifest = MEMO.manifest(self.registry.host, digest)
        hexdigest = parse_digest(manifest.layer) if manifest is not None and manifest.layer else None
        return self._cache.lookup(hexdigest) if hexdigest else None

    async def fetch(self, version: AppVersion) -> Path:
        repository, digest = self._reference(version)
        try:
            async with self._client() as client:
                manifest = MEMO.manifest(self.registry.host, digest)
                if manifest is None:
                    _, manifest = await read_manifest(client, repository, digest)
                if manifest.layer is None:
                    raise ChartFetchError(
                        "NotAChart",
                        f"{repository}@{digest} in {self.registry.host} is not a Helm chart; re-sync the source.",
                    )
                want = parse_digest(manifest.layer)
                assert want is not None  # checked when the manifest was read
                found = await self._cache.verified(want)
                if found is not None:
                    return found
                return await self._download(client, repository, want, manifest.layer_size)
        except ChartFetchError:
            raise
        except SourceError as err:
            raise ChartFetchError(err.reason, err.message, retryable=err.retryable) from err

    async def _download(self, client: RegistryClient, repository: str, want: str, size: int) -> Path:
        limit = self._limits.chart_max_bytes
        if size > limit:
            raise ChartFetchError(
                "ChartTooLarge",
                f"The chart {repository}@sha256:{want[:12]} is {size} bytes, over the {limit} bytes limit for a "
                "chart; raise the limit if the chart is genuine.",
            )
        try:
            async with self._cache.incoming() as incoming:
                await client.download(
                    f"/v2/{repository}/blobs/sha256:{want}",
                    scope=f"repository:{repository}:pull",
                    what=f"the chart {repository}@sha256:{want[:12]}",
                    max_bytes=min(limit, size),
                    write=incoming.write,
                )
                if incoming.hexdigest != want:
                    raise ChartFetchError(
                        "ChartDigestMismatch",
                        f"The chart layer of {repository} from {self.registry.host} has sha256 "
                        f"{incoming.hexdigest} but its manifest says {want}; the registry serves other bytes "
                        "than it lists, so it cannot be trusted.",
                    )
                return await self._cache.commit(incoming)
        except OSError as exc:
            raise ChartFetchError(
                "ChartCacheError",
                f"Could not write the chart to the cache directory {self._cache.root} ({exc.strerror or exc}); "
                "check that it exists, is writable and has free space.",
                retryable=True,
            ) from exc

    async def verify_cosign(self, version: AppVersion, *, public_key: bytes) -> CosignResult:
        """cosign's verdict on the manifest digest `version` names (the one `fetch` pulled), by `public_key`."""
        repository, digest = self._reference(version)
        try:
            return await verify_cosign(
                cosign=self._cosign,
                registry=self.registry.host,
                repository=repository,
                digest=digest,
                public_key=public_key,
                auth=self._auth,
            )
        except ValueError as exc:  # a name cosign cannot be given safely (e.g. an IPv6 literal host)
            raise VerificationError(
                "VerificationUnsupported",
                f"Chart {repository}@{digest} on {self.registry.host} cannot be checked with cosign: {exc}. "
                "It is not installed; use a registry host name.",
            ) from None
        except OSError as exc:  # the binary is missing or not executable: an operator install problem
            raise VerificationError(
                "VerificationError",
                f"cosign ({self._cosign}) could not be run ({exc.strerror or exc}); set KUBEMART_COSIGN_BINARY "
                "to the cosign CLI. It is tried again later.",
                retryable=True,
            ) from exc

    def _reference(self, version: AppVersion) -> tuple[str, str]:
        """The version's repository and manifest digest, on this source's registry only."""
        url = version.urls[0] if version.urls else ""
        try:
            host, repository, digest = parse_chart_url(url)
        except InvalidReference as exc:
            raise ChartFetchError(
                "InvalidChartURL",
                f"Version {version.version} has no usable chart URL: {exc}; re-sync the source.",
            ) from None
        if host != self.registry.host or digest != version.digest:
            # Never send this source's credentials to another registry.
            raise ChartFetchError(
                "InvalidChartURL",
                f"Version {version.version}'s chart URL is not on {self.registry.host} or does not name its "
                "digest; re-sync the source.",
            )
        return repository, digest
