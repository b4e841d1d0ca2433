"""Never stuck: crashes mid-operation, restarts, a vanished API server, cancellation, remediation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.apps import install, request_reconcile, running
from support.cluster import ROOT, Cluster
from support.kube import Objects, condition
from support.operator_process import OperatorProcess
from support.wait import wait_for


@pytest.fixture
def own_operator(cluster: Cluster, operator_session: OperatorProcess) -> Iterator[OperatorProcess]:
    """An operator of this test's own, to crash and restart; the shared one is paused meanwhile."""
    operator_session.stop()
    op = OperatorProcess(cluster)
    op.start()
    yield op
    op.stop()
    operator_session.start()


def releases(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return json.loads(cluster.run("helm", "list", "-n", namespace, "-a", "-o", "json").stdout)  # type: ignore[no-any-return]


def helm_running(namespace: str) -> bool:
    out = subprocess.run(
        ["pgrep", "-af", f"helm upgrade .*--namespace {namespace}"], capture_output=True, text=True
    ).stdout
    return bool(out.strip())


@pytest.mark.parametrize("operation", ["install", "upgrade"])
def test_sigkill_mid_operation_recovers_to_one_running_release(
    cluster: Cluster,
    objects: Objects,
    catalog: str,
    namespace: str,
    own_operator: OperatorProcess,
    operation: str,
) -> None:
    # A slow rollout (pods that cannot schedule until the values change) keeps helm busy long enough.
    slow = {"nodeSelector": {"later": "yes"}}
    if operation == "install":
        install(objects, namespace, "crash", source=catalog, app="hello", version="0.1.0", values=slow)
    else:
        install(objects, namespace, "crash", source=catalog, app="hello", version="0.1.0")
        wait_for(lambda: running(objects, namespace, "crash"), timeout=120, what="Running")
        objects.patch("appinstalls", "crash", {"spec": {"version": "0.2.0", "values": slow}}, namespace)
    wait_for(
        lambda: (
            helm_running(namespace)
            and any(r["status"] == f"pending-{operation}" for r in releases(cluster, namespace))
        ),
        timeout=60,
        interval=0.2,
        what=f"helm {operation} under way",
    )
    own_operator.crash()
    assert not helm_running(namespace), "the crash took helm with it"
    assert releases(cluster, namespace)[0]["status"] == f"pending-{operation}", "the release is left pending"

    # The fix the user was waiting for, then the operator comes back.
    objects.patch(
        "appinstalls", "crash", {"spec": {"version": "0.2.0", "values": {"nodeSelector": None}}}, namespace
    )
    own_operator.start()
    app = wait_for(
        lambda: (
            (a := running(objects, namespace, "crash")) and a["status"]["installedVersion"] == "0.2.0" and a
        ),
        timeout=180,
        what="Running with the requested version",
    )
    rel = releases(cluster, namespace)
    assert [(r["name"], r["status"]) for r in rel] == [("crash", "deployed")], "exactly one release, deployed"
    results = [h["result"] for h in app["status"]["history"]]
    assert "Interrupted" in results, "the history says the operation was cut short"
    assert any(r == "ReleaseRecovered" for _, r, _ in objects.events_for("crash", namespace))


def test_restart_when_idle_runs_no_helm_and_writes_nothing(
    objects: Objects, catalog: str, namespace: str, own_operator: OperatorProcess
) -> None:
    for i in range(3):
        install(objects, namespace, f"idle-{i}", source=catalog, app="hello")
    for i in range(3):
        wait_for(lambda i=i: running(objects, namespace, f"idle-{i}"), timeout=120, what=f"idle-{i} Running")
    # Taken once the old process has stopped: a status write it still had in flight when the last app
    # turned Running is not the restart's.
    own_operator.stop()
    before = {
        a["metadata"]["name"]: a["metadata"]["resourceVersion"]
        for a in objects.list("appinstalls", namespace=namespace)
    }
    own_operator.start()
    # Every app is reconciled once at start; wait until the new process has done that many.
    known = len(objects.list("appinstalls"))
    wait_for(
        lambda: own_operator.metric("kubemart_reconciles_total") >= known,
        timeout=60,
        what="startup reconciles",
    )
    assert own_operator.metric("kubemart_helm_subprocesses_total") == 0
    after = {
        a["metadata"]["name"]: a["metadata"]["resourceVersion"]
        for a in objects.list("appinstalls", namespace=namespace)
    }
    assert after == before, "no AppInstall was written"


def test_spec_change_cancels_the_operation_in_flight(
    objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(
        objects,
        namespace,
        "slow",
        source=catalog,
        app="hello",
        timeout="10m",
        values={"nodeSelector": {"never": "x"}},
    )
    wait_for(lambda: helm_running(namespace), timeout=60, interval=0.1, what="helm install running")
    started = time.monotonic()
    objects.patch("appinstalls", "slow", {"spec": {"values": {"nodeSelector": None}}}, namespace)
    app = wait_for(lambda: running(objects, namespace, "slow"), timeout=120, what="Running with the new spec")
    assert time.monotonic() - started < 90, "did not wait for the 10m timeout"
    assert "Canceled" in [h["result"] for h in app["status"]["history"]]


def test_deleting_during_an_operation_cancels_it_and_uninstalls(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(
        objects,
        namespace,
        "doomed",
        source=catalog,
        app="hello",
        timeout="10m",
        values={"nodeSelector": {"never": "x"}},
    )
    wait_for(lambda: helm_running(namespace), timeout=60, interval=0.1, what="helm install running")
    objects.delete("appinstalls", "doomed", namespace)
    wait_for(
        lambda: objects.get("appinstalls", "doomed", namespace) is None,
        timeout=90,
        what="deleted without waiting 10m",
    )
    assert releases(cluster, namespace) == []


def test_failed_upgrade_with_uninstall_strategy_uninstalls(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(
        objects,
        namespace,
        "cleanup",
        source=catalog,
        app="hello",
        version="0.1.0",
        upgrade={"remediation": {"strategy": "uninstall"}},
    )
    wait_for(lambda: running(objects, namespace, "cleanup"), timeout=120, what="Running")
    objects.patch(
        "appinstalls",
        "cleanup",
        {"spec": {"version": "0.2.0", "timeout": "4s", "values": {"nodeSelector": {"never": "x"}}}},
        namespace,
    )
    wait_for(
        lambda: condition(objects.get("appinstalls", "cleanup", namespace), "Stalled"),
        timeout=120,
        what="Stalled",
    )
    ops = [
        (h["operation"], h["result"])
        for h in objects.get("appinstalls", "cleanup", namespace)["status"]["history"]
    ]  # type: ignore[index]
    assert ops[:2] == [("uninstall", "Succeeded"), ("upgrade", "Failed")]
    assert releases(cluster, namespace) == []


def test_failed_upgrade_rolls_back_then_stalls_and_retry_annotation_retries(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "remedy", source=catalog, app="hello", version="0.1.0")
    wait_for(lambda: running(objects, namespace, "remedy"), timeout=120, what="Running")
    objects.patch(
        "appinstalls",
        "remedy",
        {"spec": {"version": "0.2.0", "timeout": "4s", "values": {"nodeSelector": {"never": "x"}}}},
        namespace,
    )
    stalled = wait_for(
        lambda: condition(objects.get("appinstalls", "remedy", namespace), "Stalled"),
        timeout=120,
        what="Stalled",
    )
    assert stalled["reason"] == "RetriesExhausted"
    assert "reconcile-requested-at" in stalled["message"]
    app = objects.get("appinstalls", "remedy", namespace)
    ops = [(h["operation"], h["result"]) for h in app["status"]["history"]]  # type: ignore[index]
    assert ops[:2] == [("rollback", "Succeeded"), ("upgrade", "Failed")]
    assert releases(cluster, namespace)[0]["chart"] == "hello-0.1.0", "rolled back to the last good revision"

    attempts = len(ops)
    request_reconcile(objects, "appinstalls", "remedy", namespace)
    wait_for(
        lambda: len(objects.get("appinstalls", "remedy", namespace)["status"]["history"]) > attempts,  # type: ignore[index]
        timeout=60,
        what="a new attempt after the retry request",
    )


def test_twenty_apps_corrected_at_once(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    names = [f"many-{i}" for i in range(20)]
    for n in names:
        install(objects, namespace, n, source=catalog, app="hello")
    for n in names:
        wait_for(lambda n=n: running(objects, namespace, n), timeout=300, what=f"{n} Running")
    apps = client.AppsV1Api(k8s)
    uids = {n: apps.read_namespaced_deployment(n, namespace).metadata.uid for n in names}
    for n in names:
        apps.delete_namespaced_deployment(n, namespace)

    def all_back() -> bool:
        live = {d.metadata.name: d.metadata.uid for d in apps.list_namespaced_deployment(namespace).items}
        return all(n in live and live[n] != uids[n] for n in names)

    wait_for(all_back, timeout=60, what="all 20 Deployments recreated")


def test_api_server_outage_of_twenty_seconds_loses_nothing(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
) -> None:
    if cluster.external:
        pytest.skip("stopping the API server is only possible on the local cluster")
    log_start = operator.log_size()
    install(objects, namespace, "before", source=catalog, app="hello")
    wait_for(lambda: running(objects, namespace, "before"), timeout=120, what="Running")
    restart = stop_apiserver()
    time.sleep(20)  # the outage itself
    restart()
    wait_for(
        lambda: cluster.run("kubectl", "get", "--raw", "/readyz", check=False).returncode == 0,
        timeout=60,
        what="API back",
    )
    install(objects, namespace, "after", source=catalog, app="hello")
    wait_for(
        lambda: running(objects, namespace, "after"), timeout=120, what="an app installed after the outage"
    )
    # The watches came back too: drift is still corrected within seconds.
    apps = client.AppsV1Api(k8s)
    uid = apps.read_namespaced_deployment("before", namespace).metadata.uid
    apps.delete_namespaced_deployment("before", namespace)
    wait_for(
        lambda: (
            [
                d.metadata.uid
                for d in apps.list_namespaced_deployment(namespace).items
                if d.metadata.name == "before"
            ]
            not in ([], [uid])
        ),
        timeout=60,
        what="drift corrected after the outage",
    )
    assert "Traceback" not in operator.log(log_start), "the outage is an expected error: no traceback"


def stop_apiserver() -> Any:
    """Kill the local kube-apiserver; return a function that starts it again with the same command."""
    pid_file = next((ROOT / ".cluster" / "kwok" / "clusters").glob("*/pids/kube-apiserver.pid"))
    pid = int(pid_file.read_text())
    args = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    cwd = os.readlink(f"/proc/{pid}/cwd")
    log = pid_file.parent.parent / "logs" / "kube-apiserver.log"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="apiserver gone")

    def restart() -> None:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [a.decode() for a in args],
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pid_file.write_text(str(proc.pid))

    return restart
