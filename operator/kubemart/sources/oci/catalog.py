"""An OCI registry's charts as chart versions, at the least cost in requests.

What one sync asks: the catalog (`/v2/_catalog`, one request per 1000 repositories, unless
`spec.charts` lists them), then one tags list per chart. A tag seen before maps to a manifest digest
remembered in this process, and a digest to what its manifest and config said (content-addressed:
a digest names the same bytes for ever), so an unchanged registry costs those lists and nothing
else. Only a tag not seen before (or not checked for `RECHECK` seconds: tags can be moved, so it gets
a HEAD for its digest) costs a manifest GET and, for a new digest, a config GET. The revision is a
hash of chart -> tag -> digest: equal revisions mean the same catalog.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubemart.domain.clip import one_line
from kubemart.domain.versions import sort_versions_desc
from kubemart.models.marketapp import MAX_VERSIONS
from kubemart.sources.base import ChartVersions
from kubemart.sources.oci.client import MAX_CONFIG, RegistryClient
from kubemart.sources.oci.errors import OciError, invalid
from kubemart.sources.oci.reference import (
    HELM_CHART,
    HELM_CHART_LEGACY,
    HELM_CONFIG,
    MANIFEST_TYPES,
    InvalidReference,
    next_link,
    signature_tag,
    tag_version,
    valid_digest,
)

PAGE = 1000
MAX_REPOSITORIES = 100_000
"""Repositories read from a catalog (all paths, not only ours) before giving up."""
MAX_TAGS = 10_000
"""Tags read per chart; only the newest MAX_VERSIONS semver ones are looked at."""
RECHECK = 3600.0
"""Seconds a tag's digest is trusted before a HEAD checks it again."""
MAX_REMEMBERED = 200_000
MAX_NOTES = 50
_ACCEPT = ", ".join(MANIFEST_TYPES)
T = TypeVar("T")


@dataclass(frozen=True)
class Manifest:
    """What a chart manifest says that the catalog and an install need."""

    config: dict[str, Any] | None
    """The chart's Chart.yaml as JSON; None when the artifact is not a Helm chart."""
    layer: str | None
    """Digest of the chart archive."""
    layer_size: int
    created: str | None


@dataclass
class Memo:
    """What this process learnt from registries: tags' digests and manifests by digest, bounded."""

    tags: OrderedDict[tuple[str, str, str], tuple[str, float]] = field(default_factory=OrderedDict)
    manifests: OrderedDict[tuple[str, str], Manifest] = field(default_factory=OrderedDict)

    def tag(self, host: str, repository: str, tag: str) -> tuple[str, float] | None:
        return self.tags.get((host, repository, tag))

    def set_tag(self, host: str, repository: str, tag: str, digest: str) -> None:
        _put(self.tags, (host, repository, tag), (digest, time.monotonic()))

    def manifest(self, host: str, digest: str) -> Manifest | None:
        return self.manifests.get((host, digest))

    def set_manifest(self, host: str, digest: str, manifest: Manifest) -> None:
        _put(self.manifests, (host, digest), manifest)


MEMO = Memo()


def _put(store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > MAX_REMEMBERED:
        store.popitem(last=False)


@dataclass
class Listing:
    revision: str
    charts: ChartVersions
    notes: list[str]


async def list_charts(client: RegistryClient, names: list[str]) -> dict[str, str]:
    """Chart name -> repository: `names` under the path, or those the registry's catalog lists."""
    registry = client.registry
    if names:
        return {n: registry.repository(n) for n in names}
    found: dict[str, str] = {}
    url: str | None = f"{registry.base}/v2/_catalog?n={PAGE}"
    seen = 0
    while url is not None:
        try:
            doc, headers, _ = await client.get_json(url, scope="registry:catalog:*", what="the catalog")
        except OciError as err:
            if err.reason in ("UnexpectedResponse", "RepositoryAuthFailed"):
                raise OciError(
                    "CatalogUnavailable" if err.reason == "UnexpectedResponse" else err.reason,
                    f"{err.message} Registries that do not serve /v2/_catalog (ghcr.io, Docker Hub) need "
                    "the charts listed in the source's spec.charts.",
                    retryable=True,
                ) from err
            raise
        repos = doc.get("repositories") if isinstance(doc, dict) else None
        if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
            raise invalid(url, "The catalog", "has no list of repositories")
        seen += len(repos)
        if seen > MAX_REPOSITORIES:
            raise invalid(url, "The catalog", f"lists over {MAX_REPOSITORIES} repositories")
        for repo in repos:
            chart = registry.chart_of(repo)
            if chart is not None:
                found[chart] = repo
        url = _next(headers.get("Link"), url)
    return found


def _next(header: str | None, current: str) -> str | None:
    try:
        return next_link(header, current)
    except InvalidReference as exc:
        raise invalid(current, "A page of results", f"cannot be followed: {exc}") from None


async def gather_all(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """All results, or the first failure with the rest cancelled (no request outlives its sync)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as grouped:
        raise grouped.exceptions[0] from None
    return [t.result() for t in tasks]


async def list_tags(client: RegistryClient, repository: str) -> list[str] | None:
    """The repository's tags; None when the registry holds no such repository."""
    tags: list[str] = []
    url: str | None = f"{client.registry.base}/v2/{repository}/tags/list?n={PAGE}"
    what = f"the tags of {repository}"
    while url is not None and len(tags) < MAX_TAGS:
        try:
            doc, headers, _ = await client.get_json(url, scope=f"repository:{repository}:pull", what=what)
        except OciError as err:
            if err.reason == "ChartNotFound":
                return None
            raise
        page = doc.get("tags") if isinstance(doc, dict) else None
        if page is None:
            page = []  # distribution says `"tags": null` for a repository whose tags were all deleted
        if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
            raise invalid(url, what.capitalize(), "has no list of tags")
        tags.extend(page)
        url = _next(headers.get("Link"), url)
    return tags[:MAX_TAGS]


async def read_manifest(client: RegistryClient, repository: str, reference: str) -> tuple[str, Manifest]:
    """GET a manifest by tag or digest: its digest (computed, and checked when asked by digest) and content."""
    host = client.registry.host
    what = f"the manifest {repository}:{reference}"
    doc, headers, raw = await client.get_json(
        f"/v2/{repository}/manifests/{reference}",
        scope=f"repository:{repository}:pull",
        what=what,
        accept=_ACCEPT,
    )
    url = f"{client.registry.base}/v2/{repository}/manifests/{reference}"
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if reference.startswith("sha256:") and digest != reference:
        raise OciError(
            "ChartDigestMismatch",
            f"The manifest {repository}@{reference} from {host} has digest {digest}; the registry serves other "
            "bytes than that digest names, so it cannot be trusted.",
        )
    known = MEMO.manifest(host, digest)
    if known is not None:
        return digest, known
    media = (headers.get("Content-Type") or "").split(";")[0].strip()
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise invalid(url, what.capitalize(), "is not an OCI image manifest (schemaVersion 2)")
    media = doc.get("mediaType") or media
    config = doc.get("config")
    if media not in MANIFEST_TYPES or not isinstance(config, dict):
        manifest = Manifest(
            config=None, layer=None, layer_size=0, created=None
        )  # an image index, a Docker image
    elif config.get("mediaType") != HELM_CONFIG:
        manifest = Manifest(config=None, layer=None, layer_size=0, created=None)
    else:
        manifest = await _chart_manifest(client, repository, doc, url, what)
    MEMO.set_manifest(host, digest, manifest)
    return digest, manifest


async def _chart_manifest(
    client: RegistryClient, repository: str, doc: dict[str, Any], url: str, what: str
) -> Manifest:
    config, layers = doc["config"], doc.get("layers")
    charts = [
        layer
        for layer in (layers if isinstance(layers, list) else [])
        if isinstance(layer, dict) and layer.get("mediaType") in (HELM_CHART, HELM_CHART_LEGACY)
    ]
    if (
        len(charts) != 1
        or not valid_digest(charts[0].get("digest"))
        or not valid_digest(config.get("digest"))
    ):
        raise invalid(
            url, what.capitalize(), "is a Helm chart manifest without exactly one chart layer and a config"
        )
    size = charts[0].get("size")
    if not isinstance(size, int) or size < 0:
        raise invalid(url, what.capitalize(), "gives no size for the chart layer")
    body = await _config(client, repository, config["digest"])
    annotations = doc.get("annotations")
    created = annotations.get("org.opencontainers.image.created") if isinstance(annotations, dict) else None
    return Manifest(
        config=body,
        layer=charts[0]["digest"],
        layer_size=size,
        created=created if isinstance(created, str) else None,
    )


async def _config(client: RegistryClient, repository: str, digest: str) -> dict[str, Any]:
    path = f"/v2/{repository}/blobs/{digest}"
    what = f"the chart config {repository}@{digest[:19]}"
    doc, _, raw = await client.get_json(
        path, scope=f"repository:{repository}:pull", what=what, max_bytes=MAX_CONFIG
    )
    if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
        raise invalid(client.registry.base + path, what.capitalize(), "does not match its digest")
    if not isinstance(doc, dict):
        raise invalid(
            client.registry.base + path, what.capitalize(), "is not a JSON object (Chart.yaml's fields)"
        )
    return doc


async def read_catalog(client: RegistryClient, names: list[str]) -> Listing:
    """The charts, their semver versions and digests; notes on what was left out. Raises OciError."""
    notes: list[str] = []
    valid = [n for n in names if client.registry.chart_of(client.registry.repository(n)) == n]
    notes.extend(
        f"{one_line(n, 64)!r} in spec.charts is not a repository name" for n in names if n not in valid
    )
    if names and not valid:
        raise OciError(
            "InvalidChartNames", "No name in spec.charts is a valid repository name; fix spec.charts."
        )
    charts = await list_charts(client, valid)
    tags = await gather_all([list_tags(client, repo) for repo in charts.values()])
    digests: dict[str, dict[str, str]] = {}
    work: list[tuple[str, str, str]] = []
    for (chart, repo), chart_tags in zip(charts.items(), tags, strict=True):
        if chart_tags is None:
            notes.append(f"{chart}: no repository {repo} in the registry")
            continue
        versions = {}
        for tag in chart_tags:
            version = tag_version(tag)
            if version is None and signature_tag(tag):
                continue
            if version is None:
                notes.append(f"{chart}: tag {one_line(tag, 64)!r} is not a semver version")
            else:
                versions[version] = tag
        newest = sort_versions_desc(versions)[:MAX_VERSIONS]
        digests[chart] = {}
        work.extend((chart, repo, versions[v]) for v in newest)
    found = await gather_all([_digest(client, repo, tag) for _, repo, tag in work])
    entries: ChartVersions = {}
    for (chart, repo, tag), (digest, manifest) in zip(work, found, strict=True):
        digests[chart][tag] = digest
        if manifest.config is None:
            notes.append(f"{chart}:{tag} is not a Helm chart (its manifest's config is not {HELM_CONFIG})")
            continue
        version = tag_version(tag)
        if str(manifest.config.get("version")) != version:
            notes.append(
                f"{chart}:{tag} holds chart version {one_line(str(manifest.config.get('version')), 40)!r}"
            )
            continue
        entry = {
            **manifest.config,
            "version": version,
            "digest": digest,
            "urls": [client.registry.chart_url(repo, digest)],
        }
        entry["created"] = manifest.created
        entries.setdefault(chart, []).append(entry)
    # What was left out counts too: a new tag that is not semver is said, though no version changed.
    content = {"digests": digests, "left out": sorted(notes)}
    revision = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return Listing(revision=f"sha256:{revision}", charts=entries, notes=notes[:MAX_NOTES])


async def _digest(client: RegistryClient, repository: str, tag: str) -> tuple[str, Manifest]:
    """The tag's manifest digest and content: from memory when known and checked recently."""
    host = client.registry.host
    known = MEMO.tag(host, repository, tag)
    if known is not None:
        digest, checked = known
        manifest = MEMO.manifest(host, digest)
        if manifest is not None and time.monotonic() - checked < RECHECK:
            return digest, manifest
        if manifest is not None:
            headers = await client.head(
                f"/v2/{repository}/manifests/{tag}",
                scope=f"repository:{repository}:pull",
                what=f"the manifest {repository}:{tag}",
                accept=_ACCEPT,
            )
            if headers.get("Docker-Content-Digest") == digest:
                MEMO.set_tag(host, repository, tag, digest)
                return digest, manifest
    digest, manifest = await read_manifest(client, repository, tag)
    MEMO.set_tag(host, repository, tag, digest)
    return digest, manifest
