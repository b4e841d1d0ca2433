"""Apps that need more than the cluster has wait, with the numbers, and install by themselves when it grows.

Against the real API server, helm and kwok nodes of known capacity and architecture: the cluster's
nodes (kwok's, 32 CPUs and 256Gi each, amd64) are too small for one app and of the wrong architecture
for another; `kwokctl scale node` then adds a node big enough, of the other architecture, and both
install without anyone touching them. A chart whose kubeVersion excludes the cluster is Stalled.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.apps import create_source, install, running
from support.cluster import BIN, ROOT, Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for
from test_health_checks import check

BIG = {"kubemart.io/requirements": "{cpu: '100', memory: 300Gi}"}
ARM = {"kubemart.io/requirements": "{cpu: 500m, architectures: [arm64]}"}


def kwokctl(cluster: Cluster, *args: str) -> None:
    """The local cluster's kwokctl (hack/cluster.sh keeps its state under the cluster's directory)."""
    state = Path(os.environ.get("KUBEMART_CLUSTER_DIR") or ROOT / ".cluster")
    name = os.environ.get("KUBEMART_CLUSTER_NAME", "kubemart")
    env = {**cluster.env(), "KWOK_WORKDIR": str(state / "kwok")}
    subprocess.run(
        [str(BIN / "kwokctl"), "--name", name, *args], env=env, check=True, capture_output=True, timeout=60
    )


@pytest.fixture
def scaled_nodes(cluster: Cluster, k8s: client.ApiClient) -> Iterator[Any]:
    """Adds one kwok node (cpu, memory, arch) on demand; scales back to the nodes there were after."""
    if cluster.external:
        pytest.skip("adds nodes with the local cluster's kwokctl")
    core = client.CoreV1Api(k8s)
    scaled = core.list_node(label_selector="kwok.x-k8s.io/kwokctl-scale=node").items
    before = len(scaled)
    added: list[str] = []

    def add(*, cpu: str, memory: str, arch: str) -> None:
        kwokctl(
            cluster,
            "scale",
            "node",
            "--replicas",
            str(before + 1),
            "--param",
            f'.allocatable.cpu="{cpu}"',
            "--param",
            f'.allocatable.memory="{memory}"',
            "--param",
            f'.nodeInfo.architecture="{arch}"',
        )
        added.append(arch)

    yield add
    if added:
        kwokctl(cluster, "scale", "node", "--replicas", str(before))
        wait_for(
            lambda: len(core.list_node(label_selector="kwok.x-k8s.io/kwokctl-scale=node").items) == before,
            timeout=30,
            what="the added node gone",
        )


def reason_is(objects: Objects, namespace: str, name: str, reason: str, type_: str = "Ready") -> Any:
    obj = objects.get("appinstalls", name, namespace)
    c = condition(obj, type_)
    if c and c["status"] in ("True", "False") and c["reason"] == reason:
        return obj
    return None


def releases(cluster: Cluster, namespace: str) -> list[str]:
    return cluster.run("helm", "list", "-n", namespace, "-a", "-q").stdout.split()


def test_apps_too_big_or_of_another_architecture_wait_and_install_by_themselves_when_a_node_fits(
    cluster: Cluster,
    objects: Objects,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    namespace: str,
    scaled_nodes: Any,
) -> None:
    since = operator.log_size()
    source = f"t-{uuid.uuid4().hex[:8]}"
    chart_repo.add_chart("big", "1.0.0", annotations=BIG, reindex=False)
    chart_repo.add_chart("armonly", "1.0.0", annotations=ARM, reindex=False)
    chart_repo.add_chart("future", "1.0.0", kube_version=">=9.0.0-0")
    create_source(objects, source, chart_repo.url)
    try:
        wait_for(lambda: ready(objects.get("marketsources", source)), timeout=60, what="source Ready")
        install(objects, namespace, "big", source=source, app="big")
        install(objects, namespace, "armonly", source=source, app="armonly")
        install(objects, namespace, "future", source=source, app="future")

        big = wait_for(
            lambda: reason_is(objects, namespace, "big", "InsufficientResources"),
            timeout=60,
            what="big waits",
        )
        message = condition(big)["message"]  # type: ignore[index]
        assert "big needs cpu 100, memory 300Gi free on one node" in message, message
        assert "node-000000 cpu 32, memory 256Gi" in message, message
        assert big["status"]["phase"] == "Pending"
        check(cluster, "appinstall-insufficient-resources", big)
        arm = wait_for(
            lambda: reason_is(objects, namespace, "armonly", "InsufficientResources"),
            timeout=60,
            what="arm waits",
        )
        assert "runs on arm64 only" in condition(arm)["message"]  # type: ignore[index]
        assert "(nodes have: amd64" in condition(arm)["message"]  # type: ignore[index]
        future = wait_for(
            lambda: reason_is(objects, namespace, "future", "KubeVersionUnsupported", "Stalled"),
            timeout=60,
            what="future Stalled",
        )
        assert "requires Kubernetes >=9.0.0-0" in condition(future)["message"]  # type: ignore[index]
        check(cluster, "appinstall-kube-version-unsupported", future)
        wait_for(
            lambda: any(
                t == "Warning" and r == "InsufficientResources"
                for t, r, _ in objects.events_for("big", namespace)
            ),
            timeout=30,
            what="an InsufficientResources Event",
        )
        assert releases(cluster, namespace) == [], "no helm ran for an app that does not fit"
        generations = {
            n: objects.get("appinstalls", n, namespace)["metadata"]["generation"] for n in ("big", "armonly")
        }  # type: ignore[index]

        # A node with room for both, of the architecture one of them needs: they install by themselves.
        scaled_nodes(cpu="128", memory="512Gi", arch="arm64")
        for name in ("big", "armonly"):
            done = wait_for(lambda n=name: running(objects, namespace, n), timeout=60, what=f"{name} Running")
            assert done["metadata"]["generation"] == generations[name]
            assert not (done["metadata"].get("annotations") or {}).get("kubemart.io/reconcile-requested-at")
            assert done["status"]["requirements"]["cpu"] in ("100", "500m")
        assert sorted(releases(cluster, namespace)) == ["armonly", "big"]
        log = operator.log(since)
        assert "watch of nodes ended" not in log, log[-3000:]
        assert "watch of pods ended" not in log, log[-3000:]
        for name in ("big", "armonly", "future"):
            objects.delete("appinstalls", name, namespace)
        wait_for(
            lambda: not objects.list("appinstalls", namespace=namespace), timeout=60, what="apps uninstalled"
        )
    finally:
        objects.delete("marketsources", source)


def test_an_upgrade_that_asks_more_than_any_node_has_waits_and_the_running_app_is_left_running(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, namespace: str
) -> None:
    source = f"t-{uuid.uuid4().hex[:8]}"
    chart_repo.add_chart("grow", "1.0.0", annotations={"kubemart.io/requirements": "{cpu: '1'}"})
    create_source(objects, source, chart_repo.url)
    try:
        wait_for(lambda: ready(objects.get("marketsources", source)), timeout=60, what="source Ready")
        install(objects, namespace, "grow", source=source, app="grow", version="1.0.0")
        first = wait_for(lambda: running(objects, namespace, "grow"), timeout=60, what="grow Running")
        assert first["status"]["requirements"] == {"cpu": "1", "architectures": []}

        # Version 2 asks 100 CPUs: 99 more than the installed one holds, more than any node has free.
        chart_repo.add_chart("grow", "2.0.0", annotations={"kubemart.io/requirements": "{cpu: '100'}"})
        objects.patch(
            "marketsources",
            source,
            {"metadata": {"annotations": {"kubemart.io/reconcile-requested-at": "1"}}},
        )
        wait_for(
            lambda: (
                (objects.get("marketapps", f"{source}.grow") or {}).get("spec", {}).get("latestVersion")
                == "2.0.0"
            ),
            timeout=60,
            what="version 2 in the catalog",
        )
        objects.patch("appinstalls", "grow", {"spec": {"version": "2.0.0"}}, namespace)
        waiting = wait_for(
            lambda: reason_is(objects, namespace, "grow", "InsufficientResources"),
            timeout=60,
            what="upgrade waits",
        )
        assert "grow needs cpu 99 free on one node" in condition(waiting)["message"]  # type: ignore[index]
        assert waiting["status"]["phase"] == "Running"
        assert waiting["status"]["installedVersion"] == "1.0.0"
        history = cluster.run("helm", "history", "grow", "-n", namespace, "-o", "json").stdout
        assert history.count('"revision"') == 1, "no helm upgrade ran"

        # Back to the installed version: nothing to check, Ready again.
        objects.patch("appinstalls", "grow", {"spec": {"version": "1.0.0"}}, namespace)
        wait_for(lambda: running(objects, namespace, "grow"), timeout=60, what="grow Running again")
        objects.delete("appinstalls", "grow", namespace)
        wait_for(
            lambda: not objects.list("appinstalls", namespace=namespace), timeout=60, what="app uninstalled"
        )
    finally:
        objects.delete("marketsources", source)


def test_with_the_check_turned_off_an_app_too_big_for_the_nodes_is_installed(
    cluster: Cluster,
    objects: Objects,
    shared_operator_paused: None,
    chart_repo: ChartRepo,
    namespace: str,
    tmp_path: Path,
) -> None:
    op = OperatorProcess(
        cluster,
        extra_env={
            "KUBEMART_CHECK_REQUIREMENTS": "false",
            "KUBEMART_CHART_CACHE_DIR": str(tmp_path / "charts"),
        },
    )
    op.start()
    source = f"t-{uuid.uuid4().hex[:8]}"
    chart_repo.add_chart("big", "1.0.0", annotations=BIG)
    create_source(objects, source, chart_repo.url)
    try:
        wait_for(lambda: ready(objects.get("marketsources", source)), timeout=60, what="source Ready")
        install(objects, namespace, "big", source=source, app="big")
        done = wait_for(lambda: running(objects, namespace, "big"), timeout=60, what="big Running")
        assert "requirements" not in done["status"], "nothing was checked, so nothing recorded"
        assert releases(cluster, namespace) == ["big"]
        objects.delete("appinstalls", "big", namespace)
        wait_for(
            lambda: not objects.list("appinstalls", namespace=namespace), timeout=60, what="app uninstalled"
        )
        assert "Traceback" not in op.log()
    finally:
        objects.delete("marketsources", source)
        op.stop()
