"""The sources seam: the helm HTTP source's snapshots, and `Charts` as the release engine calls it.

Against a real chart repository on 127.0.0.1 (charts packaged and indexed by the real helm CLI).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from kubemart.catalog.entries import catalog_from_charts
from kubemart.models.marketapp import AppVersion
from kubemart.models.marketsource import MarketSource
from kubemart.runtime.settings import Settings
from kubemart.sources import ChartFetchError, Charts, Cursor, Snapshot, Unchanged
from kubemart.sources.cache import ChartCache
from kubemart.sources.helm_http import HelmHttpSource
from support.operator_process import free_port
from support.repo import ChartRepo


def source(url: str, **spec: Any) -> MarketSource:
    return MarketSource.model_validate({"metadata": {"name": "main"}, "spec": {"url": url, **spec}})


def snapshot(repo_url: str, since: Cursor | None, tmp_path: Path) -> Snapshot | Unchanged:
    return asyncio.run(HelmHttpSource(repo_url, auth=None, cache=ChartCache(tmp_path)).snapshot(since))


def versions(repo: ChartRepo, tmp_path: Path, app: str = "hello") -> list[AppVersion]:
    got = snapshot(repo.url, None, tmp_path)
    assert isinstance(got, Snapshot)
    return catalog_from_charts("main", got.charts).entries[f"main.{app}"].spec.versions


@pytest.fixture
def charts(tmp_path: Path) -> Charts:
    # No secretRef in these sources, so the Kubernetes API is never asked for credentials.
    return Charts(None, tmp_path / "cache", Settings(chart_max_bytes=64 * 1024))  # type: ignore[arg-type]


# --- snapshots ----------------------------------------------------------------------------------


def test_snapshot_then_unchanged_with_one_conditional_request(chart_repo: ChartRepo, tmp_path: Path) -> None:
    chart_repo.add_chart("hello", "0.1.0")
    first = snapshot(chart_repo.url, None, tmp_path)
    assert isinstance(first, Snapshot)
    assert first.revision.startswith("sha256:")
    assert [v["version"] for v in first.charts["hello"]] == ["0.1.0"]
    assert first.cursor.etag

    seen = len(chart_repo.log.entries)
    again = snapshot(chart_repo.url, first.cursor, tmp_path)
    assert again == Unchanged(first.cursor)
    (request,) = chart_repo.log.entries[seen:]
    assert request[2].get("If-None-Match") == first.cursor.etag


def test_a_server_without_validators_is_unchanged_when_the_bytes_are(
    chart_repo: ChartRepo, tmp_path: Path
) -> None:
    body = b"apiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0}\n"
    chart_repo.serve_index_bytes(body)
    first = snapshot(chart_repo.url, None, tmp_path)
    assert isinstance(first, Snapshot)
    assert first.cursor.etag is None
    assert isinstance(snapshot(chart_repo.url, first.cursor, tmp_path), Unchanged)
    chart_repo.serve_index_bytes(body + b"  b:\n  - {name: b, version: 1.0.0}\n")
    changed = snapshot(chart_repo.url, first.cursor, tmp_path)
    assert isinstance(changed, Snapshot)
    assert sorted(changed.charts) == ["a", "b"]


# --- Charts: the release engine's entry point ---------------------------------------------------


def test_fetch_downloads_once_and_cached_then_answers_with_a_stat(
    chart_repo: ChartRepo, tmp_path: Path, charts: Charts
) -> None:
    tgz = chart_repo.add_chart("hello", "0.1.0")
    (version,) = versions(chart_repo, tmp_path)
    src = source(chart_repo.url)
    assert charts.cached(src, version) is None

    path = asyncio.run(charts.fetch(src, version))

    assert path.read_bytes() == tgz.read_bytes()
    assert path.name == hashlib.sha256(tgz.read_bytes()).hexdigest() + ".tgz"
    assert charts.cached(src, version) == path
    downloads = [p for p in chart_repo.log.paths() if p.endswith(".tgz")]
    assert asyncio.run(charts.fetch(src, version)) == path
    assert [p for p in chart_repo.log.paths() if p.endswith(".tgz")] == downloads, "served from the cache"


def test_a_version_without_a_digest_is_remembered_by_url(
    chart_repo: ChartRepo, tmp_path: Path, charts: Charts
) -> None:
    chart_repo.add_chart("hello", "0.1.0")
    (version,) = versions(chart_repo, tmp_path)
    bare = version.model_copy(update={"digest": None})
    src = source(chart_repo.url)
    assert charts.cached(src, bare) is None
    path = asyncio.run(charts.fetch(src, bare))
    assert charts.cached(src, bare) == path


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"urls": ["file:///etc/passwd"]}, "InvalidChartURL", id="file URL"),
        pytest.param({"urls": []}, "ChartURLMissing", id="no URL"),
        pytest.param({"digest": "0" * 64}, "ChartDigestMismatch", id="digest mismatch"),
        pytest.param({"digest": "md5:abc"}, "ChartDigestInvalid", id="invalid digest"),
        pytest.param({"urls": ["hello-9.9.9.tgz"]}, "ChartNotFound", id="not served"),
    ],
)
def test_what_cannot_work_until_the_catalog_changes_is_not_retryable(
    chart_repo: ChartRepo, tmp_path: Path, charts: Charts, change: dict[str, Any], reason: str
) -> None:
    chart_repo.add_chart("hello", "0.1.0")
    (version,) = versions(chart_repo, tmp_path)
    with pytest.raises(ChartFetchError) as info:
        asyncio.run(charts.fetch(source(chart_repo.url), version.model_copy(update=change)))
    assert (info.value.reason, info.value.retryable) == (reason, False)
    assert info.value.message.endswith(".")
    assert not list((tmp_path / "cache").glob("*.tgz"))


def test_a_chart_over_the_size_limit_is_not_retryable(chart_repo: ChartRepo, tmp_path: Path) -> None:
    # Random bytes do not compress: the archive is well over the 1 KiB limit.
    chart_repo.add_chart("hello", "0.1.0", extra_templates={"NOTES.txt": os.urandom(4096).hex()})
    (version,) = versions(chart_repo, tmp_path)
    small = Charts(None, tmp_path / "c", Settings(chart_max_bytes=1024))  # type: ignore[arg-type]
    with pytest.raises(ChartFetchError) as info:
        asyncio.run(small.fetch(source(chart_repo.url), version))
    assert (info.value.reason, info.value.retryable) == ("ChartTooLarge", False)


def test_what_may_pass_is_retryable(chart_repo: ChartRepo, tmp_path: Path, charts: Charts) -> None:
    chart_repo.add_chart("hello", "0.1.0")
    (version,) = versions(chart_repo, tmp_path)
    chart_repo.fail_chart_downloads(503)
    with pytest.raises(ChartFetchError) as info:
        asyncio.run(charts.fetch(source(chart_repo.url), version))
    assert (info.value.reason, info.value.retryable) == ("RepositoryServerError", True)

    gone = version.model_copy(update={"urls": [f"http://127.0.0.1:{free_port()}/hello-0.1.0.tgz"]})
    with pytest.raises(ChartFetchError) as info:
        asyncio.run(charts.fetch(source(chart_repo.url), gone))
    assert (info.value.reason, info.value.retryable) == ("RepositoryUnreachable", True)


def test_a_source_type_not_supported_yet_is_not_retryable(charts: Charts) -> None:
    version = AppVersion(version="1.0.0", urls=["https://uploads.example/hello"])
    upload = source("https://uploads.example/", type="upload")
    assert charts.cached(upload, version) is None
    with pytest.raises(ChartFetchError) as info:
        asyncio.run(charts.fetch(upload, version))
    assert (info.value.reason, info.value.retryable) == ("UnsupportedSourceType", False)


def test_a_git_version_without_a_digest_is_not_retryable(charts: Charts) -> None:
    version = AppVersion(version="1.0.0", urls=["charts/hello"])
    git = source("https://git.example/charts.git", type="git")
    assert charts.cached(git, version) is None
    with pytest.raises(ChartFetchError) as info:
        asyncio.run(charts.fetch(git, version))
    assert (info.value.reason, info.value.retryable) == ("ChartDigestInvalid", False)


def test_an_oci_chart_url_off_the_sources_registry_is_refused(charts: Charts) -> None:
    digest = "sha256:" + "ab" * 32
    oci = source("oci://registry.example/charts", type="oci")
    for urls in (
        ["oci://elsewhere.example/charts/hello@" + digest],
        ["oci://registry.example/charts/hello:1.0.0"],
    ):
        version = AppVersion(version="1.0.0", digest=digest, urls=urls)
        assert charts.cached(oci, version) is None
        with pytest.raises(ChartFetchError) as info:
            asyncio.run(charts.fetch(oci, version))
        assert (info.value.reason, info.value.retryable) == ("InvalidChartURL", False)
