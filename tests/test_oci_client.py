"""The OCI source alone (no cluster) against the real registry: pagination through the registry's own
Link headers, a moved tag noticed by HEAD, the chart cache, and installs that ask for exactly a digest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubemart.models.marketapp import AppVersion
from kubemart.sources.base import ChartFetchError, Snapshot, SourceError
from kubemart.sources.cache import ChartCache
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.oci import OciSource, catalog
from support.registry import PASSWORD, USERNAME, Registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("oci-client"))
    yield reg
    reg.close()


def source(registry: Registry, path: str, tmp_path: Path) -> OciSource:
    auth = RepoAuth(username=USERNAME, password=PASSWORD, ca_pem=registry.ca_pem)
    return OciSource(registry.url(path), charts=[], auth=auth, cache=ChartCache(tmp_path / "cache"))


def snapshot(src: OciSource) -> Snapshot:
    result = asyncio.run(src.snapshot(None))
    assert isinstance(result, Snapshot)
    return result


def test_pages_are_followed_through_the_registrys_link_headers(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "PAGE", 2)
    for i in range(5):
        registry.push("paged", f"c{i}", "1.0.0")
    for v in ("1.1.0", "1.2.0", "1.3.0", "1.4.0"):
        registry.push("paged", "c0", v)
    seen = len(registry.requests())
    snap = snapshot(source(registry, "paged", tmp_path))
    assert sorted(snap.charts) == [f"c{i}" for i in range(5)]
    assert [e["version"] for e in snap.charts["c0"]] == ["1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.0"]
    paths = [p for _, p in registry.requests()[seen:]]
    assert sum("/v2/_catalog" in p for p in paths) >= 3, "several catalog pages"
    assert sum("/paged/c0/tags/list" in p for p in paths) == 3, "five tags in pages of two"


def test_a_moved_tag_is_noticed_by_a_head_and_installs_stay_by_digest(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.push("moved", "hello", "0.1.0", description="first")
    src = source(registry, "moved", tmp_path)
    first = snapshot(src)
    (entry,) = first.charts["hello"]
    old = AppVersion(version="0.1.0", digest=entry["digest"], urls=entry["urls"])
    path = asyncio.run(src.fetch(old))
    assert src.cached(old) == path

    # Re-pushed under the same tag with other content.
    registry.push("moved", "hello", "0.1.0", description="second")
    unchanged = asyncio.run(src.snapshot(first.cursor))
    assert not isinstance(unchanged, Snapshot), "within RECHECK the remembered digest stands"

    monkeypatch.setattr(catalog, "RECHECK", 0.0)
    seen = len(registry.requests())
    moved = snapshot(src)
    assert moved.revision != first.revision
    (new_entry,) = moved.charts["hello"]
    assert new_entry["digest"] != entry["digest"]
    assert new_entry["description"] == "second"
    new = registry.requests()[seen:]
    assert ("HEAD", "/v2/moved/hello/manifests/0.1.0") in new
    assert ("GET", "/v2/moved/hello/manifests/0.1.0") in new

    # The old digest still names the old chart: what an AppInstall asked for is what it gets.
    assert asyncio.run(src.fetch(old)) == path
    newer = asyncio.run(
        src.fetch(AppVersion(version="0.1.0", digest=new_entry["digest"], urls=new_entry["urls"]))
    )
    assert newer != path


def test_a_digest_the_registry_does_not_hold_is_a_fetch_error(registry: Registry, tmp_path: Path) -> None:
    registry.push("gone", "hello", "0.1.0")
    src = source(registry, "gone", tmp_path)
    digest = "sha256:" + "0" * 64
    missing = AppVersion(version="0.1.0", digest=digest, urls=[f"oci://{registry.host}/gone/hello@{digest}"])
    with pytest.raises(ChartFetchError) as info:
        asyncio.run(src.fetch(missing))
    assert (info.value.reason, info.value.retryable) == ("ChartNotFound", False)
    assert PASSWORD not in info.value.message


def test_credentials_are_needed_and_never_shown(registry: Registry, tmp_path: Path) -> None:
    registry.push("creds", "hello", "0.1.0")
    anonymous = OciSource(
        registry.url("creds"),
        charts=["hello"],
        auth=RepoAuth(ca_pem=registry.ca_pem),
        cache=ChartCache(tmp_path),
    )
    with pytest.raises(SourceError) as info:
        asyncio.run(anonymous.snapshot(None))
    assert info.value.reason == "RepositoryAuthFailed"
    wrong = OciSource(
        registry.url("creds"),
        charts=["hello"],
        auth=RepoAuth(username=USERNAME, password="not-" + PASSWORD, ca_pem=registry.ca_pem),
        cache=ChartCache(tmp_path),
    )
    with pytest.raises(SourceError) as info:
        asyncio.run(wrong.snapshot(None))
    assert info.value.reason == "RepositoryAuthFailed"
    assert PASSWORD not in str(info.value)


def test_chart_names_that_are_not_repository_names_are_refused(registry: Registry, tmp_path: Path) -> None:
    registry.push("names", "hello", "0.1.0")
    auth = RepoAuth(username=USERNAME, password=PASSWORD, ca_pem=registry.ca_pem)
    some = OciSource(
        registry.url("names"), charts=["hello", "Hello", "a/../b"], auth=auth, cache=ChartCache(tmp_path)
    )
    snap = snapshot(some)
    assert list(snap.charts) == ["hello"]
    assert "'Hello' in spec.charts is not a repository name" in snap.notes
    none = OciSource(registry.url("names"), charts=["../x?y"], auth=auth, cache=ChartCache(tmp_path))
    with pytest.raises(SourceError) as info:
        asyncio.run(none.snapshot(None))
    assert info.value.reason == "InvalidChartNames"
