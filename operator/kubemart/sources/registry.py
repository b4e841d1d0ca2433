"""Which implementation serves a MarketSource of each `spec.type`, with the operator's limits."""

from __future__ import annotations

from kubemart.adapters.kube import Kube
from kubemart.models.marketsource import MarketSource, SourceType
from kubemart.runtime.settings import Settings
from kubemart.sources.base import Source, SourceError
from kubemart.sources.cache import ChartCache
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.git import GitLimits, GitSource, GitSpec
from kubemart.sources.git.build import BuildLimits
from kubemart.sources.helm_http import HelmHttpSource, HttpLimits
from kubemart.sources.helm_http.index import IndexLimits
from kubemart.sources.oci import Limits, OciSource
from kubemart.sources.upload import UploadSource


def http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        index_max_bytes=settings.index_max_bytes,
        chart_max_bytes=settings.chart_max_bytes,
        deadline=settings.repository_deadline,
        index=IndexLimits(max_nodes=settings.index_max_nodes, seconds=settings.index_parse_seconds),
    )


def git_limits(settings: Settings) -> GitLimits:
    return GitLimits(
        deadline=settings.repository_deadline,
        max_bytes=settings.git_max_bytes,
        build=BuildLimits(chart_max_bytes=settings.chart_max_bytes),
    )


def source_for(
    source: MarketSource,
    *,
    auth: RepoAuth | None,
    settings: Settings,
    cache: ChartCache,
    kube: Kube | None = None,
) -> Source:
    """The source for `source.spec`; SourceError (not retryable) for a type not supported yet."""
    if source.spec.type is SourceType.HELM and source.spec.url:
        return HelmHttpSource(source.spec.url, auth=auth, cache=cache, limits=http_limits(settings))
    if source.spec.type is SourceType.OCI and source.spec.url:
        limits = Limits(chart_max_bytes=settings.chart_max_bytes, deadline=settings.repository_deadline)
        return OciSource(
            source.spec.url,
            charts=source.spec.charts,
            auth=auth,
            cache=cache,
            limits=limits,
            cosign=settings.cosign_binary,
        )
    if source.spec.type is SourceType.UPLOAD and source.spec.upload and kube is not None:
        # The namespace the spec names, and no other: only who may write there can add charts.
        return UploadSource(source.spec.upload.namespace, kube=kube, cache=cache)
    if source.spec.type is SourceType.GIT and source.spec.url:
        spec = GitSpec(
            url=source.spec.url,
            ref=source.spec.ref,
            path=source.spec.path,
            definitions=source.spec.definitions,
        )
        return GitSource(
            spec, revision=source.status.revision, auth=auth, cache=cache, limits=git_limits(settings)
        )
    raise SourceError(
        "UnsupportedSourceType",
        f"Sources of type {source.spec.type.value} are not supported yet; use type helm, oci, git or upload.",
    )
