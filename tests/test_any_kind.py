"""Any kind of object in a chart (issue #10, point 1): custom resources of the chart's own CRD and
cluster-scoped RBAC objects install to Ready, are corrected when deleted or edited, and go away on
uninstall as helm would have them; a kind the API server stops serving gives a clear message.
API discovery (adapters/discovery.py) is checked against the real API server too."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubemart.adapters.kube import Kube
from support.apps import create_source, handled, install, request_reconcile, running
from support.cluster import BIN, Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.tokens import token_kubeconfig
from support.wait import wait_for

CHARTS = Path(__file__).parent / "charts"
WIDGETS = ("example.org", "v1", "widgets")


def publish(repo: ChartRepo, *charts: str) -> None:
    """Package chart directories of tests/charts into the repository (CRDs in crds/ included)."""
    for name in charts:
        subprocess.run(
            [str(BIN / "helm"), "package", str(CHARTS / name), "-d", str(repo.public)],
            check=True,
            capture_output=True,
        )
    repo.reindex()


@pytest.fixture
def kinds(objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo) -> Iterator[str]:
    """A synced source with the `widgets` and `cluster-rbac` charts."""
    name = f"t-kinds-{uuid.uuid4().hex[:6]}"
    publish(chart_repo, "widgets", "cluster-rbac")
    create_source(objects, name, chart_repo.url)
    wait_for(lambda: ready(objects.get("marketsources", name)), timeout=60, what="source Ready")
    yield name
    objects.delete("marketsources", name)


def _gone(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def corrections(objects: Objects, namespace: str, name: str) -> int:
    app = objects.get("appinstalls", name, namespace) or {}
    return int(((app.get("status") or {}).get("corrections") or {}).get("count") or 0)


def test_chart_with_its_own_crd_and_a_custom_resource(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, kinds: str, namespace: str
) -> None:
    custom = client.CustomObjectsApi(k8s)
    install(objects, namespace, "wid", source=kinds, app="widgets")
    wait_for(lambda: running(objects, namespace, "wid"), timeout=120, what="Running and Ready")
    widget = custom.get_namespaced_custom_object(*WIDGETS[:2], namespace, WIDGETS[2], "wid")
    assert widget["spec"] == {"color": "blue", "enabled": False, "size": 1}, "defaulted by the CRD's schema"
    assert corrections(objects, namespace, "wid") == 0, "null annotations and false fields are not drift"

    # Deleted: the watch on Widgets (started when the app was first read) wakes the app at once.
    uid = widget["metadata"]["uid"]
    custom.delete_namespaced_custom_object(*WIDGETS[:2], namespace, WIDGETS[2], "wid")
    started = time.monotonic()
    back = wait_for(
        lambda: (
            (w := custom.get_namespaced_custom_object(*WIDGETS[:2], namespace, WIDGETS[2], "wid"))
            and w["metadata"]["uid"] != uid
            and w
        ),
        timeout=30,
        interval=0.1,
        what="Widget recreated",
    )
    assert time.monotonic() - started < 10, "woken by the watch, not by the next resync"
    assert back["spec"]["color"] == "blue"

    # Edited by hand: put back, and counted.
    custom.patch_namespaced_custom_object(
        *WIDGETS[:2], namespace, WIDGETS[2], "wid", {"spec": {"color": "red"}}
    )
    wait_for(
        lambda: (
            custom.get_namespaced_custom_object(*WIDGETS[:2], namespace, WIDGETS[2], "wid")["spec"]["color"]
            == "blue"
        ),
        timeout=30,
        what="hand edit reverted",
    )
    app = wait_for(
        lambda: corrections(objects, namespace, "wid") >= 2 and objects.get("appinstalls", "wid", namespace),
        timeout=30,
        what="counted",
    )
    assert "Widget" in app["status"]["corrections"]["lastSummary"]
    assert "spec.color" in app["status"]["corrections"]["lastSummary"]

    # Uninstalled: the custom resource goes, the CRD of crds/ stays (as with helm).
    objects.delete("appinstalls", "wid", namespace)
    wait_for(lambda: objects.get("appinstalls", "wid", namespace) is None, timeout=60, what="AppInstall gone")
    assert _gone(lambda: custom.get_namespaced_custom_object(*WIDGETS[:2], namespace, WIDGETS[2], "wid"))
    ext = client.ApiextensionsV1Api(k8s)
    assert ext.read_custom_resource_definition("widgets.example.org").metadata.name


def test_chart_with_cluster_scoped_rbac(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, kinds: str, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(k8s)
    name = f"{namespace}-rbac-reader"[:63]
    install(objects, namespace, "rbac", source=kinds, app="cluster-rbac")
    wait_for(lambda: running(objects, namespace, "rbac"), timeout=120, what="Running and Ready")
    assert corrections(objects, namespace, "rbac") == 0

    uid = rbac.read_cluster_role(name).metadata.uid
    rbac.delete_cluster_role(name)
    started = time.monotonic()
    wait_for(
        lambda: (
            not _gone(lambda: rbac.read_cluster_role(name))
            and rbac.read_cluster_role(name).metadata.uid != uid
        ),
        timeout=30,
        interval=0.1,
        what="ClusterRole recreated",
    )
    assert time.monotonic() - started < 10, "woken by the watch, not by the next resync"

    rbac.patch_cluster_role(
        name, {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    )
    wait_for(
        lambda: rbac.read_cluster_role(name).rules[0].resources == ["configmaps"],
        timeout=30,
        what="rules put back",
    )
    binding_uid = rbac.read_cluster_role_binding(name).metadata.uid
    rbac.delete_cluster_role_binding(name)
    wait_for(
        lambda: (
            not _gone(lambda: rbac.read_cluster_role_binding(name))
            and rbac.read_cluster_role_binding(name).metadata.uid != binding_uid
        ),
        timeout=30,
        what="ClusterRoleBinding recreated",
    )
    wait_for(
        lambda: corrections(objects, namespace, "rbac") >= 3, timeout=30, what="three corrections counted"
    )

    objects.delete("appinstalls", "rbac", namespace)
    wait_for(
        lambda: objects.get("appinstalls", "rbac", namespace) is None, timeout=60, what="AppInstall gone"
    )
    assert _gone(lambda: rbac.read_cluster_role(name))
    assert _gone(lambda: rbac.read_cluster_role_binding(name))


def test_a_kind_no_longer_served_gives_a_clear_message_not_a_loop(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    kinds: str,
    namespace: str,
) -> None:
    install(objects, namespace, "lost", source=kinds, app="widgets")
    wait_for(lambda: running(objects, namespace, "lost"), timeout=120, what="Running")
    since = operator.log_size()
    ext = client.ApiextensionsV1Api(k8s)
    try:
        ext.delete_custom_resource_definition("widgets.example.org")
        wait_for(
            lambda: _gone(lambda: ext.read_custom_resource_definition("widgets.example.org")),
            timeout=60,
            what="CRD gone",
        )
        # Nothing of the app changes with its CRD gone, so its next check says it: ask for one now.
        stamp = request_reconcile(objects, "appinstalls", "lost", namespace)
        app = wait_for(
            lambda: handled(objects, "appinstalls", "lost", stamp, namespace), timeout=60, what="handled"
        )
        cond = condition(app)
        assert cond is not None
        assert "not served" in cond["message"], cond
        assert "Widget" in cond["message"]
        assert "CustomResourceDefinition" in cond["message"], "says what to do"
        assert cond["status"] == "False", "the app's objects cannot be checked: it is not Ready"
        assert objects.get("appinstalls", "lost", namespace)["status"]["phase"] == "Degraded"
        log = operator.log(since)
        assert "Traceback" not in log
    finally:
        # Helm cannot uninstall a release holding a kind with no CRD: put the CRD back first.
        cluster.run("kubectl", "apply", "--server-side", "-f", str(CHARTS / "widgets" / "crds"))
        objects.delete("appinstalls", "lost", namespace)
        wait_for(
            lambda: objects.get("appinstalls", "lost", namespace) is None, timeout=60, what="AppInstall gone"
        )


def test_discovery_against_the_api_server(cluster: Cluster, k8s: client.ApiClient) -> None:
    """A kind appears when its CRD does; a kind that never exists costs one request per TTL."""
    group = f"t{uuid.uuid4().hex[:8]}.example.org"
    ext = client.ApiextensionsV1Api(k8s)

    async def scenario() -> None:
        kube = Kube.from_environment()
        kube.mapper.negative_ttl = 1.0
        try:
            deploy = await kube.resource_for("apps/v1", "Deployment")
            assert deploy is not None
            assert (deploy.plural, deploy.namespaced) == ("deployments", True)
            role = await kube.resource_for("rbac.authorization.k8s.io/v1", "ClusterRole")
            assert role is not None
            assert not role.namespaced
            before = kube.mapper.requests
            found = await asyncio.gather(*(kube.resource_for(f"{group}/v1", "Gadget") for _ in range(200)))
            assert found == [None] * 200
            assert kube.mapper.requests - before == 1, "one request for 200 look-ups"
            await asyncio.to_thread(_create_crd, ext, group)
            deadline = time.monotonic() + 30
            while (gadget := await kube.resource_for(f"{group}/v1", "Gadget")) is None:
                assert time.monotonic() < deadline, "the new kind was never seen"
                await asyncio.sleep(0.2)
            assert (gadget.plural, gadget.namespaced) == ("gadgets", False)
            assert kube.mapper.requests - before <= 2 + 30 / 1.0, "bounded by the negative TTL"
        finally:
            await kube.close()

    try:
        asyncio.run(scenario())
    finally:
        ext.delete_custom_resource_definition(f"gadgets.{group}")


def _create_crd(ext: client.ApiextensionsV1Api, group: str) -> None:
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"gadgets.{group}"},
            "spec": {
                "group": group,
                "names": {"kind": "Gadget", "plural": "gadgets"},
                "scope": "Cluster",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
    )


def test_a_refused_watch_is_tried_a_bounded_number_of_times(
    cluster: Cluster, k8s: client.ApiClient, namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator that may not list a kind (rbac.chartContents=none and a chart's own kind) tries its
    watch a few times, says so once, and leaves it: no retry loop."""
    from lightkube import AsyncClient
    from lightkube.config.kubeconfig import KubeConfig

    from kubemart.services import drift_watch

    cluster.run("kubectl", "create", "serviceaccount", "nobody", "-n", namespace)
    config = token_kubeconfig(cluster, "nobody", namespace, tmp_path / "kubeconfig")

    async def scenario() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        kube = Kube(AsyncClient(KubeConfig.from_file(config)))
        watcher = drift_watch.DriftWatcher(kube, lambda ns, r: None, backoff_base=0.02, retry_after=600)
        try:
            watcher.ensure("rbac.authorization.k8s.io/v1", "ClusterRole")
            deadline = time.monotonic() + 30
            while ("rbac.authorization.k8s.io/v1", "ClusterRole") not in watcher.given_up():
                assert time.monotonic() < deadline, "the refused watch was never given up"
                await asyncio.sleep(0.05)
            assert watcher.alive() == (0, 0), "a watch given up is not counted as one that should run"
            given_up = watcher.watched()
            watcher.ensure("rbac.authorization.k8s.io/v1", "ClusterRole")  # the next app's read
            await asyncio.sleep(0.5)
            return given_up, watcher.watched()
        finally:
            await watcher.close()
            await kube.close()

    with caplog.at_level(logging.INFO, logger="kubemart.drift"):
        given_up, after = asyncio.run(scenario())
    assert given_up == set()
    assert after == set(), "not started again before retry_after"
    refusals = [r for r in caplog.records if "ClusterRole" in r.getMessage()]
    assert len(refusals) == drift_watch.REFUSALS_TRIED, [r.getMessage() for r in refusals]
    warnings = [r for r in refusals if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, "said once"
    assert "403" in warnings[0].getMessage()
    assert "next resync" in warnings[0].getMessage()
