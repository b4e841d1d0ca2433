"""Upload sources: `kubectl market upload` (the real plugin, with a person's own credentials) stores a
chart in a namespace's Secrets; an upload source naming that namespace offers it; it installs,
upgrades by range and uninstalls like any app. A view user cannot upload; an oversized chart, a
corrupt stored chart and a chart stored in another namespace never reach the catalog."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.rest import ApiException

from support.apps import running
from support.cluster import BIN, Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.tokens import token_kubeconfig
from support.wait import wait_for
from test_chart import fresh_namespaces, helm, helm_install
from test_kubectl_market import failed, market, ok

__all__ = ["fresh_namespaces"]  # a fixture, used by name

HELLO = Path(__file__).parent / "charts" / "hello"
pytestmark = pytest.mark.cluster


def chart_dir(tmp_path: Path, name: str, version: str) -> Path:
    """The test suite's hello chart renamed and versioned, as a directory."""
    target = tmp_path / f"{name}-{version}" / name
    shutil.copytree(HELLO, target)
    meta = yaml.safe_load((target / "Chart.yaml").read_text())
    (target / "Chart.yaml").write_text(yaml.safe_dump({**meta, "name": name, "version": version}))
    (target / ".helmignore").write_text("*.bak\n")
    (target / "notes.bak").write_text("left out by .helmignore")
    return target


def helm_package(directory: Path, out: Path) -> Path:
    """A .tgz made by the real helm, as a person would upload one."""
    subprocess.run(
        [str(BIN / "helm"), "package", str(directory), "-d", str(out)], check=True, capture_output=True
    )
    return next(out.glob("*.tgz"))


@pytest.fixture
def upload_source(objects: Objects, operator: OperatorProcess, namespace: str) -> Iterator[str]:
    """An upload source reading the test namespace's stored charts, Ready."""
    name = f"up-{uuid.uuid4().hex[:8]}"
    objects.create(
        "marketsources",
        {
            "kind": "MarketSource",
            "metadata": {"name": name},
            "spec": {"type": "upload", "upload": {"namespace": namespace}},
        },
    )
    wait_for(lambda: ready(objects.get("marketsources", name)), timeout=60, what="upload source Ready")
    yield name
    objects.delete("marketsources", name)


def versions(objects: Objects, source: str, app: str) -> list[str]:
    found = objects.get("marketapps", f"{source}.{app}")
    return [v["version"] for v in (found or {}).get("spec", {}).get("versions", [])]


def test_upload_a_directory_and_a_tgz_install_upgrade_by_range_uninstall(
    cluster: Cluster, objects: Objects, upload_source: str, namespace: str, tmp_path: Path
) -> None:
    first = chart_dir(tmp_path, "mychart", "0.1.0")
    out = ok(market(cluster, "upload", str(first), "-n", namespace, "--wait", "--timeout", "1m"))
    assert out.splitlines()[0].startswith(f"chart mychart 0.1.0 uploaded to namespace {namespace} ")
    assert out.splitlines()[1] == f"mychart 0.1.0 is in the catalog of source {upload_source}"
    app = objects.get("marketapps", f"{upload_source}.mychart")
    assert app is not None
    assert app["spec"]["description"] == "A small chart for the test suite"
    stored = cluster.run("kubectl", "get", "secret", "chart-mychart-0.1.0", "-n", namespace, "-o", "json")
    assert '"type": "kubemart.io/chart"' in stored.stdout
    # An unchanged directory uploaded again is the same archive: nothing changes.
    again = ok(market(cluster, "upload", str(first), "-n", namespace))
    assert "chart mychart 0.1.0 already uploaded, unchanged, to namespace" in again

    ok(
        market(
            cluster,
            "install",
            "mychart",
            "-n",
            namespace,
            "--source",
            upload_source,
            "--version",
            ">=0.1.0 <1.0.0",
            "--wait",
            "--timeout",
            "3m",
        )
    )
    installed = running(objects, namespace, "mychart")
    assert installed is not None
    assert installed["status"]["installedVersion"] == "0.1.0"

    # A new version, packaged by helm itself: the install follows its range to it.
    tgz = helm_package(chart_dir(tmp_path, "mychart", "0.2.0"), tmp_path / "out")
    out = ok(market(cluster, "upload", str(tgz), "-n", namespace, "--wait", "--timeout", "1m"))
    assert out.startswith(f"chart mychart 0.2.0 uploaded to namespace {namespace} ")
    assert versions(objects, upload_source, "mychart") == ["0.2.0", "0.1.0"]
    wait_for(
        lambda: (
            (running(objects, namespace, "mychart") or {}).get("status", {}).get("installedVersion")
            == "0.2.0"
        ),
        timeout=180,
        what="upgrade to the uploaded 0.2.0",
    )

    # The same version with other content is refused unless --force.
    (first / "values.yaml").write_text("replicaCount: 2\n")
    error = failed(market(cluster, "upload", str(first), "-n", namespace))
    assert "mychart 0.1.0 was uploaded before with other content" in error
    old = objects.get("marketapps", f"{upload_source}.mychart")["spec"]["versions"][1]["digest"]  # type: ignore[index]
    assert ok(market(cluster, "upload", str(first), "-n", namespace, "--force", "--wait")).startswith(
        f"chart mychart 0.1.0 replaced in namespace {namespace} "
    )
    new = objects.get("marketapps", f"{upload_source}.mychart")["spec"]["versions"][1]  # type: ignore[index]
    assert (new["version"], new["digest"] != old) == ("0.1.0", True)

    ok(market(cluster, "uninstall", "mychart", "-n", namespace, "--wait", "--timeout", "2m"))
    assert cluster.run("helm", "list", "-n", namespace, "-a", "-q").stdout.strip() == ""

    # Deleting the stored chart removes the version from the catalog promptly.
    cluster.run("kubectl", "delete", "secret", "chart-mychart-0.1.0", "-n", namespace)
    wait_for(lambda: versions(objects, upload_source, "mychart") == ["0.2.0"], timeout=30, what="0.1.0 gone")


def listed_or_why(objects: Objects, source: str, app: str, want: list[str]) -> bool:
    """True once listed; otherwise raises with the source's condition, which a timeout then reports."""
    if versions(objects, source, app) == want:
        return True
    raise AssertionError(condition(objects.get("marketsources", source)))


def test_a_view_user_cannot_upload_an_edit_user_can(
    cluster: Cluster, objects: Objects, upload_source: str, namespace: str, tmp_path: Path
) -> None:
    for who, role in (("viewer", "view"), ("editor", "edit")):
        cluster.run("kubectl", "create", "serviceaccount", who, "-n", namespace)
        cluster.run(
            "kubectl",
            "create",
            "rolebinding",
            who,
            f"--clusterrole={role}",
            f"--serviceaccount={namespace}:{who}",
            "-n",
            namespace,
        )
    chart = chart_dir(tmp_path, "teamchart", "1.0.0")
    viewer = token_kubeconfig(cluster, "viewer", namespace, tmp_path / "viewer")
    error = failed(market(cluster, "--kubeconfig", str(viewer), "upload", str(chart), "-n", namespace))
    assert error.startswith(f"error: you may not upload charts to namespace {namespace}: ")
    assert "right to create Secrets in it" in error
    assert objects.get("marketapps", f"{upload_source}.teamchart") is None

    editor = token_kubeconfig(cluster, "editor", namespace, tmp_path / "editor")
    out = ok(market(cluster, "--kubeconfig", str(editor), "upload", str(chart), "-n", namespace))
    assert out.startswith(f"chart teamchart 1.0.0 uploaded to namespace {namespace} ")
    # The watch on stored charts wakes the source: no waiting for its 10m interval.
    wait_for(lambda: versions(objects, upload_source, "teamchart") == ["1.0.0"], timeout=30, what="listed")


def test_an_oversized_chart_is_refused_before_anything_is_stored(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    chart = chart_dir(tmp_path, "bigchart", "1.0.0")
    (chart / "files").mkdir()
    (chart / "files" / "blob.bin").write_bytes(os.urandom(1100 * 1024))  # does not compress
    error = failed(market(cluster, "upload", str(chart), "-n", namespace))
    assert error.startswith(f"error: {chart} cannot be uploaded: the archive is ")
    assert "publish a chart that big to a Helm or OCI repository" in error
    listed = cluster.run(
        "kubectl", "get", "secrets", "-n", namespace, "-l", "kubemart.io/upload=chart", "-o", "name"
    )
    assert listed.stdout.strip() == ""


def _stored(namespace: str, name: str, data: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubemart.io/chart",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"kubemart.io/upload": "chart", "kubemart.io/watch": "upload"},
        },
        "data": {"chart.tgz": base64.b64encode(data).decode()},
    }


def test_a_corrupt_stored_chart_is_left_out_and_other_namespaces_never_count(
    cluster: Cluster, objects: Objects, upload_source: str, namespace: str, tmp_path: Path
) -> None:
    ok(market(cluster, "upload", str(chart_dir(tmp_path, "good", "1.0.0")), "-n", namespace, "--wait"))
    # A tenant of another namespace stores a well-formed chart there: this source never reads it.
    other = f"{namespace}-other"[:63]
    cluster.run("kubectl", "create", "namespace", other)
    try:
        tgz = helm_package(chart_dir(tmp_path, "intruder", "1.0.0"), tmp_path / "intruder")
        ok(market(cluster, "upload", str(tgz), "-n", other))
        # Written past the plugin: not a chart at all.
        corrupt = tmp_path / "corrupt.yaml"
        corrupt.write_text(yaml.safe_dump(_stored(namespace, "chart-broken-1.0.0", b"not a tarball")))
        cluster.run("kubectl", "apply", "-f", str(corrupt))
        note = wait_for(
            lambda: next((m for _, r, m in objects.events_for(upload_source) if r == "ChartsSkipped"), None),
            timeout=30,
            what="ChartsSkipped Event",
        )
        assert (
            "Secret chart-broken-1.0.0 holds no usable chart: the archive is not a gzipped tar file" in note
        )
        source = objects.get("marketsources", upload_source)
        assert ready(source)
        assert versions(objects, upload_source, "good") == ["1.0.0"]  # the rest of the catalog stands
        assert objects.get("marketapps", f"{upload_source}.intruder") is None
        assert objects.get("marketapps", f"{upload_source}.broken") is None
    finally:
        cluster.run("kubectl", "delete", "namespace", other, "--wait=false")


def test_storage_the_operator_may_not_read_is_unreadable_and_the_last_catalog_kept(
    cluster: Cluster,
    objects: Objects,
    fresh_namespaces: list[str],
    tmp_path: Path,
    shared_operator_paused: None,
) -> None:
    """The chart's namespaced mode: its operator may read Secrets only in the namespaces it serves."""
    home, listed, unlisted = fresh_namespaces
    release = f"ku{uuid.uuid4().hex[:5]}"
    helm_install(cluster, release, home, f"watchNamespaces={{{listed}}}")
    op = OperatorProcess(
        cluster,
        kubeconfig=token_kubeconfig(cluster, f"{release}-kubemart", home, tmp_path / "kubeconfig"),
        args=("--namespace", listed),
        extra_env={"KUBEMART_CHART_CACHE_DIR": str(tmp_path / "charts")},
    )
    ok(market(cluster, "upload", str(chart_dir(tmp_path, "kept", "1.0.0")), "-n", listed))
    source = f"up-{uuid.uuid4().hex[:8]}"
    op.start()
    try:
        spec = {"type": "upload", "upload": {"namespace": listed}}
        objects.create("marketsources", {"kind": "MarketSource", "metadata": {"name": source}, "spec": spec})
        wait_for(lambda: listed_or_why(objects, source, "kept", ["1.0.0"]), timeout=90, what="listed")

        objects.patch("marketsources", source, {"spec": {"upload": {"namespace": unlisted}}})
        failing = wait_for(
            lambda: (
                (c := condition(objects.get("marketsources", source)))
                and c["reason"] == "StorageUnreadable"
                and c
            ),
            timeout=60,
            what="StorageUnreadable",
        )
        assert failing["status"] == "False"
        assert f"The stored charts in namespace {unlisted} cannot be read: " in failing["message"]
        assert "watchNamespaces" in failing["message"]
        assert "StorageUnreadable" in [r for _, r, _ in objects.events_for(source)]
        assert versions(objects, source, "kept") == ["1.0.0"]  # the last good catalog stands
    finally:
        objects.delete("marketsources", source)
        op.stop()
        helm("uninstall", release, "-n", home, "--wait", cluster=cluster)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"type": "upload"}, "upload.namespace is required for sources of type upload"),
        (
            {"type": "helm", "url": "https://charts.example.com", "upload": {"namespace": "a"}},
            "upload is for sources of type upload",
        ),
        ({"type": "upload", "upload": {"namespace": "Not_A_Namespace"}}, "spec.upload.namespace"),
    ],
)
def test_the_upload_field_is_checked_at_admission(objects: Objects, spec: dict[str, Any], says: str) -> None:
    with pytest.raises(ApiException) as exc:
        objects.create(
            "marketsources", {"kind": "MarketSource", "metadata": {"name": "bad-upload"}, "spec": spec}
        )
    assert exc.value.status == 422
    assert says in exc.value.body


def test_the_source_alone_unchanged_resync_and_fetch_checks_the_digest(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """UploadSource against the real API server: Unchanged on an unchanged namespace, a fetch that
    verifies the bytes, and the answers for a replaced or deleted stored chart."""
    from lightkube import AsyncClient, KubeConfig

    from kubemart.adapters.kube import Kube
    from kubemart.catalog.entries import catalog_from_charts
    from kubemart.sources.base import ChartFetchError, Snapshot, Unchanged
    from kubemart.sources.cache import ChartCache
    from kubemart.sources.upload import UploadSource

    ok(market(cluster, "upload", str(chart_dir(tmp_path, "alone", "1.0.0")), "-n", namespace))

    async def scenario() -> None:
        kube = Kube(AsyncClient(config=KubeConfig.from_file(str(cluster.kubeconfig))))
        try:
            source = UploadSource(namespace, kube=kube, cache=ChartCache(tmp_path / "cache"))
            first = await source.snapshot(None)
            assert isinstance(first, Snapshot)
            assert isinstance(await source.snapshot(first.cursor), Unchanged)
            [version] = catalog_from_charts("s", first.charts).entries["s.alone"].spec.versions
            path = await source.fetch(version)
            assert path.name == f"{version.digest}.tgz"
            assert source.cached(version) == path

            # Replaced past the plugin: the catalog's digest no longer matches what is stored.
            changed_dir = chart_dir(tmp_path / "v2", "alone", "1.0.0")
            (changed_dir / "values.yaml").write_text("replicaCount: 3\n")
            other = helm_package(changed_dir, tmp_path / "v2out")
            stored = cluster.run(
                "kubectl", "get", "secret", "chart-alone-1.0.0", "-n", namespace, "-o", "yaml"
            )
            body = yaml.safe_load(stored.stdout)
            body["data"]["chart.tgz"] = base64.b64encode(other.read_bytes()).decode()
            (tmp_path / "replaced.yaml").write_text(yaml.safe_dump(body))
            cluster.run("kubectl", "replace", "-f", str(tmp_path / "replaced.yaml"))
            fresh = UploadSource(namespace, kube=kube, cache=ChartCache(tmp_path / "cache2"))
            changed = await fresh.snapshot(first.cursor)
            assert isinstance(changed, Snapshot)  # a write is a new revision
            with pytest.raises(ChartFetchError) as mismatch:
                await fresh.fetch(version)
            assert (mismatch.value.reason, mismatch.value.retryable) == ("ChartDigestMismatch", False)

            cluster.run("kubectl", "delete", "secret", "chart-alone-1.0.0", "-n", namespace)
            with pytest.raises(ChartFetchError) as gone:
                await fresh.fetch(version)
            assert gone.value.reason == "UploadedChartNotFound"
            assert "upload the chart again" in gone.value.message
        finally:
            await kube.close()

    asyncio.run(scenario())
