"""Eight real public charts (../shared/realcharts) through AppInstalls, against raw helm.

For each: it installs to Ready with the values of charts.yaml; left alone through several resyncs,
a retry request and a restart of every pod, it gets no correction (issue #10, point 5); a deleted
workload comes back; and after uninstall nothing is left but what raw `helm install` + `helm
uninstall` of the same chart leaves (PVCs of StatefulSets, CRDs). Charts run in parallel, one
namespace each. Run alone with `pytest -m realcharts`; skipped when the corpus is not on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from support.apps import create_source, handled, request_reconcile, running
from support.cluster import Cluster
from support.kube import Objects, ready
from support.operator_process import OperatorProcess
from support.realcharts import RealChart, provide_capacity, real_charts, remove_capacity
from support.repo import ChartRepo
from support.wait import WaitTimeout, wait_for

CHARTS = real_charts()
pytestmark = [
    pytest.mark.realcharts,
    pytest.mark.skipif(not CHARTS, reason="the real-chart corpus (shared/realcharts) is not on this machine"),
]
RESYNC = 3.0
"""The operator's resync interval here (seconds): several resyncs pass while the apps are watched."""
IGNORED_KINDS = {
    # Records of what happens, the cluster's own machinery, and this test's own objects.
    "Event",
    "Lease",
    "Endpoints",
    "EndpointSlice",
    "Node",
    "Namespace",
    "PersistentVolume",
    "StorageClass",
    "AppInstall",
    "MarketSource",
    "MarketApp",
}


@dataclass
class Run:
    """What the module's scenario learned, shared by its tests in order."""

    suffix: str
    namespaces: dict[str, str] = field(default_factory=dict)
    """Namespace of each chart's AppInstall, by app."""
    baseline: set[tuple[str, ...]] = field(default_factory=set)
    """What raw helm leaves after uninstall."""
    before: set[tuple[str, ...]] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)
    source: str = ""


def inventory(cluster: Cluster, namespaces: dict[str, str]) -> set[tuple[str, ...]]:
    """Every object of the cluster that no other object owns, with the chart namespaces named by app."""
    kinds = cluster.run("kubectl", "api-resources", "--verbs=list", "-o", "name").stdout.split()
    listing = json.loads(
        cluster.run("kubectl", "get", ",".join(kinds), "-A", "-o", "json", timeout=300).stdout
    )
    by_namespace = {ns: f"<{app}>" for app, ns in namespaces.items()}
    out = set()
    for item in listing["items"]:
        meta = item["metadata"]
        if item["kind"] in IGNORED_KINDS or meta.get("ownerReferences"):
            continue
        if item["kind"] == "Job" and (item.get("spec") or {}).get("ttlSecondsAfterFinished") is not None:
            continue  # the cluster deletes it on its own once finished, whoever installed it
        ns = meta.get("namespace") or ""
        out.add((item["apiVersion"].rpartition("/")[0], item["kind"], by_namespace.get(ns, ns), meta["name"]))
    return out


def cpu_seconds(op: OperatorProcess) -> tuple[float, float]:
    """(the operator's own CPU seconds, its finished children's: helm), from /proc."""
    assert op.proc is not None
    fields = Path(f"/proc/{op.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def values_file(tmp: Any, chart: RealChart) -> str:
    path = tmp / f"{chart.app}-values.yaml"
    path.write_text(yaml.safe_dump(chart.values))
    return str(path)


def create_namespaces(core: client.CoreV1Api, names: list[str]) -> None:
    for name in names:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Each namespace gets its ServiceAccount and root CA before anything is counted.
    wait_for(
        lambda: all(core.list_namespaced_service_account(n).items for n in names),
        timeout=60,
        what="namespaces",
    )


def delete_namespaces(core: client.CoreV1Api, names: list[str]) -> None:
    for name in names:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def delete_cluster_leftovers(cluster: Cluster, leftovers: set[tuple[str, ...]], *, wait: bool) -> None:
    """Cluster-scoped objects a chart left (CRDs), so that the next install starts from nothing."""
    names = [
        f"{kind.lower()}{'.' + group if group else ''}/{name}"
        for group, kind, ns, name in sorted(leftovers)
        if not ns
    ]
    if names:
        cluster.run(
            "kubectl", "delete", *names, "--ignore-not-found", f"--wait={str(wait).lower()}", timeout=180
        )


@pytest.fixture(scope="module")
def run(
    cluster: Cluster, k8s: client.ApiClient, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """Capacity for the charts, then the baseline: raw helm install and uninstall of all eight."""
    state = Run(suffix=uuid.uuid4().hex[:5])
    core = client.CoreV1Api(k8s)
    volumes = provide_capacity(k8s, volumes=2 * 8, run=state.suffix)
    tmp = tmp_path_factory.mktemp("realcharts")
    raw = {c.app: f"raw-{c.app}-{state.suffix}" for c in CHARTS}
    try:
        create_namespaces(core, list(raw.values()))
        before = inventory(cluster, raw)
        started = time.monotonic()

        def helm(*args: str) -> None:
            result = cluster.run("helm", *args, check=False, timeout=600)
            assert result.returncode == 0, f"raw helm {args[0]} {args[1]} failed: {result.stderr[-2000:]}"

        with ThreadPoolExecutor(len(CHARTS)) as pool:
            list(
                pool.map(
                    lambda c: helm(
                        "install",
                        c.release,
                        str(c.archive),
                        "-n",
                        raw[c.app],
                        "-f",
                        values_file(tmp, c),
                        "--wait",
                        "--wait-for-jobs",
                        "--timeout",
                        "5m",
                    ),
                    CHARTS,
                )
            )
            state.timings["raw helm install, all eight"] = time.monotonic() - started
            list(pool.map(lambda c: helm("uninstall", c.release, "-n", raw[c.app], "--wait"), CHARTS))
        state.timings["raw helm install + uninstall"] = time.monotonic() - started
        state.baseline = inventory(cluster, raw) - before
        delete_cluster_leftovers(cluster, state.baseline, wait=True)
        yield state
    finally:
        # Nothing waits on these: namespaces, CRDs and volumes go in the background.
        delete_namespaces(core, list(raw.values()) + list(state.namespaces.values()))
        delete_cluster_leftovers(cluster, state.baseline, wait=False)
        remove_capacity(k8s, volumes)
        print("\nreal-chart timings (s):", {k: round(v, 1) for k, v in state.timings.items()})


@pytest.fixture(scope="module")
def own_operator(
    cluster: Cluster, operator_session: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """An operator resyncing every few seconds, in place of the shared one."""
    operator_session.stop()
    op = OperatorProcess(
        cluster,
        extra_env={
            "KUBEMART_CHART_CACHE_DIR": str(tmp_path_factory.mktemp("charts")),
            "KUBEMART_RESYNC_INTERVAL": str(RESYNC),
        },
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()
        print(f"\nthe real-chart operator's log (kept with KUBEMART_KEEP_LOGS=1): {op.log_path}")
        operator_session.start()


@pytest.fixture(scope="module")
def installed(
    run: Run,
    own_operator: OperatorProcess,
    cluster: Cluster,
    k8s: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Run]:
    """The eight charts served as a catalog and installed by AppInstalls, all Ready."""
    objects = Objects(k8s)
    repo = ChartRepo(tmp_path_factory.mktemp("realrepo"))
    try:
        for c in CHARTS:
            shutil.copy(c.archive, repo.public / c.archive.name)
        repo.reindex()
        run.source = f"real-{run.suffix}"
        create_source(objects, run.source, repo.url)
        wait_for(lambda: ready(objects.get("marketsources", run.source)), timeout=120, what="catalog synced")
        run.namespaces = {c.app: f"km-{c.app}-{run.suffix}" for c in CHARTS}
        create_namespaces(client.CoreV1Api(k8s), list(run.namespaces.values()))
        run.before = inventory(cluster, run.namespaces)
        started, cpu = time.monotonic(), cpu_seconds(own_operator)
        for c in CHARTS:
            spec: dict[str, Any] = {"source": run.source, "app": c.app, "values": c.values, "timeout": "5m"}
            objects.create(
                "appinstalls",
                {"kind": "AppInstall", "metadata": {"name": c.release}, "spec": spec},
                run.namespaces[c.app],
            )
        wait_for(
            lambda: all(running(objects, run.namespaces[c.app], c.release) for c in CHARTS),
            timeout=420,
            interval=1,
            what="all eight Running and Ready",
        )
        run.timings["AppInstalls to Ready, all eight"] = time.monotonic() - started
        used = cpu_seconds(own_operator)
        run.timings["operator CPU meanwhile"] = used[0] - cpu[0]
        run.timings["helm subprocesses' CPU meanwhile"] = used[1] - cpu[1]
        yield run
    finally:
        if run.namespaces:
            for c in CHARTS:
                objects.delete("appinstalls", c.release, run.namespaces[c.app])
            # Uninstalled by this operator before it stops: ingress-nginx's webhook must not outlive the module.
            with contextlib.suppress(WaitTimeout):
                wait_for(
                    lambda: (
                        not [
                            c for c in CHARTS if objects.get("appinstalls", c.release, run.namespaces[c.app])
                        ]
                    ),
                    timeout=300,
                    interval=1,
                    what="all eight uninstalled",
                )
        if run.source:
            objects.delete("marketsources", run.source)
        repo.close()


def apps(objects: Objects, run: Run) -> dict[str, dict[str, Any]]:
    return {c.app: objects.get("appinstalls", c.release, run.namespaces[c.app]) or {} for c in CHARTS}


def corrections(app: dict[str, Any]) -> int:
    return int(((app.get("status") or {}).get("corrections") or {}).get("count") or 0)


def drift_events(objects: Objects, run: Run) -> list[str]:
    return [
        f"{c.app}: {m}"
        for c in CHARTS
        for _, reason, m in objects.events_for(c.release, run.namespaces[c.app])
        if reason in ("DriftCorrected", "DriftCorrectionFailed")
    ]


def test_all_eight_install_to_ready(installed: Run, k8s: client.ApiClient) -> None:
    for app, body in apps(Objects(k8s), installed).items():
        assert body["status"]["phase"] == "Running", app
        assert not [e for e in body["status"].get("entrances") or [] if "kube-system" in e["url"]], app
    kps = apps(Objects(k8s), installed)["kube-prometheus-stack"]
    assert 0 < len(kps["status"]["entrances"]) <= 5, kps["status"]["entrances"]


def test_untouched_apps_are_never_corrected(
    installed: Run, own_operator: OperatorProcess, k8s: client.ApiClient
) -> None:
    objects, core = Objects(k8s), client.CoreV1Api(k8s)
    started = time.monotonic()
    # Several resyncs of every app.
    seen = own_operator.metric('kubemart_reconciles_total{kind="appinstall"}')
    wait_for(
        lambda: own_operator.metric('kubemart_reconciles_total{kind="appinstall"}') >= seen + 3 * len(CHARTS),
        timeout=60,
        what="three resyncs of every app",
    )
    # A retry request on each.
    stamps = {
        c.app: request_reconcile(objects, "appinstalls", c.release, installed.namespaces[c.app])
        for c in CHARTS
    }
    for c in CHARTS:
        wait_for(
            lambda c=c: handled(
                objects, "appinstalls", c.release, stamps[c.app], installed.namespaces[c.app]
            ),
            timeout=60,
            what=f"{c.app} retry handled",
        )
    # Every pod restarted.
    for ns in installed.namespaces.values():
        core.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
    wait_for(
        lambda: all(running(objects, installed.namespaces[c.app], c.release) for c in CHARTS),
        timeout=120,
        what="all Ready again after the pods' restart",
    )
    seen = own_operator.metric('kubemart_reconciles_total{kind="appinstall"}')
    wait_for(
        lambda: own_operator.metric('kubemart_reconciles_total{kind="appinstall"}') >= seen + 2 * len(CHARTS),
        timeout=60,
        what="two more resyncs",
    )
    installed.timings["untouched: resyncs, retry, pod restart"] = time.monotonic() - started
    counts = {app: corrections(body) for app, body in apps(objects, installed).items()}
    assert counts == dict.fromkeys(counts, 0), (counts, drift_events(objects, installed))
    assert drift_events(objects, installed) == []


def test_a_deleted_workload_comes_back(installed: Run, k8s: client.ApiClient) -> None:
    objects, apps_api = Objects(k8s), client.AppsV1Api(k8s)
    started = time.monotonic()
    deleted: dict[str, tuple[str, str, str]] = {}
    for c in CHARTS:
        ns = installed.namespaces[c.app]
        for kind, listing, delete in (
            ("Deployment", apps_api.list_namespaced_deployment, apps_api.delete_namespaced_deployment),
            ("StatefulSet", apps_api.list_namespaced_stateful_set, apps_api.delete_namespaced_stateful_set),
            ("DaemonSet", apps_api.list_namespaced_daemon_set, apps_api.delete_namespaced_daemon_set),
        ):
            items = listing(ns).items
            if items:
                workload = items[0]
                delete(workload.metadata.name, ns)
                deleted[c.app] = (kind, workload.metadata.name, workload.metadata.uid)
                break
    assert set(deleted) == {c.app for c in CHARTS}, "every chart has a workload"

    def back(app: str) -> bool:
        kind, name, uid = deleted[app]
        ns = installed.namespaces[app]
        read = {
            "Deployment": apps_api.read_namespaced_deployment,
            "StatefulSet": apps_api.read_namespaced_stateful_set,
            "DaemonSet": apps_api.read_namespaced_daemon_set,
        }[kind]
        try:
            return bool(read(name, ns).metadata.uid != uid)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    for app in deleted:
        wait_for(lambda app=app: back(app), timeout=60, what=f"{app}'s {deleted[app][0]} back")
    installed.timings["deleted workloads back"] = time.monotonic() - started
    for c in CHARTS:
        body = wait_for(
            lambda c=c: (
                (b := objects.get("appinstalls", c.release, installed.namespaces[c.app]))
                and corrections(b)
                and b
            ),
            timeout=30,
            what=f"{c.app}'s correction counted",
        )
        assert deleted[c.app][1] in body["status"]["corrections"]["lastSummary"]
        assert corrections(body) == 1, body["status"]["corrections"]


def test_uninstall_leaves_only_what_helm_leaves(
    installed: Run, cluster: Cluster, k8s: client.ApiClient
) -> None:
    objects = Objects(k8s)
    started = time.monotonic()
    for c in CHARTS:
        objects.delete("appinstalls", c.release, installed.namespaces[c.app])
    wait_for(
        lambda: not [c for c in CHARTS if objects.get("appinstalls", c.release, installed.namespaces[c.app])],
        timeout=300,
        interval=1,
        what="all eight uninstalled",
    )
    installed.timings["uninstall, all eight"] = time.monotonic() - started
    leftovers = inventory(cluster, installed.namespaces) - installed.before
    assert installed.baseline, "raw helm leaves something (PVCs, CRDs): the comparison means something"
    assert sorted(leftovers) == sorted(installed.baseline)
