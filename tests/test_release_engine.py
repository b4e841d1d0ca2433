"""The release engine's own promises: retry budgets survive restarts, start-up fails fast, helm slots are
shared fairly, helm's errors keep their cause, one uninstall per deletion, only opted-in values are watched."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.apps import install, running
from support.cluster import Cluster
from support.kube import Objects, condition
from support.operator_process import OperatorProcess, free_port
from support.wait import wait_for


@pytest.fixture
def paused(operator_session: OperatorProcess) -> Iterator[None]:
    """The shared operator stopped, for a test that runs operators of its own."""
    operator_session.stop()
    yield
    operator_session.start()


def helm_runs(log: str, namespace: str, release: str, verb: str = "upgrade") -> int:
    return len(re.findall(rf"running command: \S*helm {verb} {release} .*--namespace {namespace}\b", log))


def stalled(objects: Objects, namespace: str, name: str, reason: str) -> dict | None:
    c = condition(objects.get("appinstalls", name, namespace), "Stalled")
    return c if c and c["reason"] == reason else None


def test_exhausted_retries_survive_sigkill_and_a_new_generation_retries(
    cluster: Cluster, objects: Objects, catalog: str, namespace: str, paused: None
) -> None:
    op = OperatorProcess(cluster)
    op.start()
    try:
        never_ready = {"nodeSelector": {"never": "x"}}
        install(
            objects,
            namespace,
            "budget",
            source=catalog,
            app="hello",
            timeout="3s",
            values=never_ready,
            install={"remediation": {"retries": 1}},
        )
        wait_for(
            lambda: stalled(objects, namespace, "budget", "RetriesExhausted"), timeout=180, what="exhausted"
        )
        app = objects.get("appinstalls", "budget", namespace)
        assert app["status"]["installFailures"] == 2  # type: ignore[index]
        assert helm_runs(op.log(), namespace, "budget") == 2
        op.crash()

        again = OperatorProcess(cluster, args=("--verbose",))
        again.start()
        try:
            # The new process reconciles every AppInstall once at start, and says what it decided.
            try:
                wait_for(
                    lambda: f"{namespace}/budget: retries-exhausted" in again.log(),
                    timeout=60,
                    what="the restarted operator's decision",
                )
            except Exception:
                print(again.log()[-5000:])
                raise
            app = objects.get("appinstalls", "budget", namespace)
            assert helm_runs(again.log(), namespace, "budget") == 0, "no helm for an exhausted generation"
            assert stalled(objects, namespace, "budget", "RetriesExhausted"), "still says so"
            assert app["status"]["installFailures"] == 2  # type: ignore[index]

            # A new generation has a fresh budget.
            objects.patch(
                "appinstalls",
                "budget",
                {"spec": {"values": {"nodeSelector": None}, "timeout": "2m"}},
                namespace,
            )
            wait_for(lambda: running(objects, namespace, "budget"), timeout=180, what="Running after the fix")
            assert objects.get("appinstalls", "budget", namespace)["status"].get("installFailures") is None  # type: ignore[index]
        finally:
            again.stop()
    finally:
        op.stop()


@pytest.mark.parametrize(
    ("setting", "what"),
    [("KUBEMART_WEBHOOK_PORT", "payment webhooks"), ("KUBEMART_METRICS_PORT", "metrics")],
)
def test_a_busy_port_stops_the_operator_at_once_with_one_clear_line(
    cluster: Cluster, crds: None, setting: str, what: str
) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = cluster.env() | {
            "KUBEMART_WEBHOOK_PORT": str(free_port()),
            "KUBEMART_METRICS_PORT": str(free_port()),
            setting: str(port),
        }
        started = time.monotonic()
        proc = subprocess.run(
            [
                str(Path(sys.executable).with_name("kubemart")),
                "run",
                "--liveness",
                f"http://127.0.0.1:{free_port()}/healthz",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        took = time.monotonic() - started
    assert proc.returncode != 0
    assert took < 5, f"exited after {took:.1f}s"
    out = (proc.stdout + proc.stderr).strip()
    assert "Traceback" not in out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert str(port) in lines[0]
    assert setting in lines[0]
    assert what in lines[0]


def test_one_tenants_backlog_does_not_starve_another_namespace(
    cluster: Cluster, k8s: client.ApiClient, objects: Objects, catalog: str, namespace: str, paused: None
) -> None:
    other = f"{namespace}-b"
    client.CoreV1Api(k8s).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    op = OperatorProcess(
        cluster,
        extra_env={
            "KUBEMART_MAX_CONCURRENT_HELM": "2",
            "KUBEMART_MAX_CONCURRENT_HELM_PER_NAMESPACE": "1",
            "KUBEMART_MAX_TIMEOUT_SECONDS": "600",
        },
    )
    op.start()
    try:
        for i in range(3):
            install(
                objects,
                namespace,
                f"hog-{i}",
                source=catalog,
                app="hello",
                timeout="1000h",
                values={"nodeSelector": {"never": "x"}},
            )
        waiting = wait_for(
            lambda: [
                c
                for i in range(3)
                if (c := condition(objects.get("appinstalls", f"hog-{i}", namespace)))
                and c["reason"] == "WaitingForHelmSlot"
            ],
            timeout=60,
            what="the tenant's other installs wait for a slot, and say so",
        )
        assert "KUBEMART_MAX_CONCURRENT_HELM_PER_NAMESPACE" in waiting[0]["message"]
        install(objects, other, "neighbour", source=catalog, app="hello")
        wait_for(
            lambda: running(objects, other, "neighbour"),
            timeout=120,
            what="the other namespace's app Running",
        )
        log = op.log()
        assert "--timeout 600s" in log, "spec.timeout is cut to the setting"
        assert "--timeout 3600000s" not in log
        phases = {objects.get("appinstalls", f"hog-{i}", namespace)["status"].get("phase") for i in range(3)}  # type: ignore[index]
        assert "Running" not in phases
    finally:
        op.stop()
        client.CoreV1Api(k8s).delete_namespace(other)


def test_helms_multi_line_error_keeps_its_cause(objects: Objects, catalog: str, namespace: str) -> None:
    install(objects, namespace, "bad", source=catalog, app="hello", values={"image": ""})
    cond = wait_for(
        lambda: (
            (c := condition(objects.get("appinstalls", "bad", namespace)))
            and c["reason"] == "ObjectRejected"
            and c
        ),
        timeout=120,
        what="ObjectRejected",
    )
    assert "image" in cond["message"], cond["message"]
    assert "Required value" in cond["message"], cond["message"]
    app = objects.get("appinstalls", "bad", namespace)
    assert "Required value" in app["status"]["history"][0]["message"]  # type: ignore[index]
    assert stalled(objects, namespace, "bad", "ObjectRejected"), "retrying cannot help"
    assert any(
        r == "ObjectRejected" and "Required value" in m for _, r, m in objects.events_for("bad", namespace)
    )


def test_deleting_runs_helm_uninstall_once(
    objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "once", source=catalog, app="hello")
    wait_for(lambda: running(objects, namespace, "once"), timeout=120, what="Running")
    log_start = operator.log_size()
    objects.delete("appinstalls", "once", namespace)
    wait_for(lambda: objects.get("appinstalls", "once", namespace) is None, timeout=120, what="deleted")
    log = operator.log(log_start)
    assert helm_runs(log, namespace, "once", verb="uninstall") == 1, log
    # The shared operator may still be cleaning up after an earlier test: only this app's lines count.
    assert [line for line in log.splitlines() if "WARNING" in line and f"{namespace}/once" in line] == []


def test_unrelated_secrets_are_not_watched(
    cluster: Cluster, k8s: client.ApiClient, objects: Objects, catalog: str, namespace: str, paused: None
) -> None:
    op = OperatorProcess(cluster, extra_env={"KUBEMART_MAX_CONCURRENT_HELM": "16"})
    op.start()
    try:
        count = 200
        for i in range(count):
            install(objects, namespace, f"app-{i}", source=catalog, app="hello", values={"replicaCount": 0})

        def settled(a: dict[str, Any]) -> bool:
            # Running is written by the install's pass, which asks for one more look at once; that
            # pass records the release Secret's uid. Only then is the app idle.
            status = a.get("status") or {}
            return status.get("phase") == "Running" and bool(
                (status.get("ownedRelease") or {}).get("secretUid")
            )

        wait_for(
            lambda: sum(1 for a in objects.list("appinstalls", namespace=namespace) if settled(a)) == count,
            timeout=900,
            interval=2,
            what=f"{count} AppInstalls Running and looked at once more",
        )
        reconciles = op.metric('kubemart_reconciles_total{kind="appinstall"}')
        core = client.CoreV1Api(k8s)

        def churn(i: int) -> None:
            name = f"unrelated-{i}"
            core.create_namespaced_secret(
                namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={"k": "v"})
            )
            core.patch_namespaced_secret(name, namespace, {"stringData": {"k": "w"}})

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(churn, range(300)))
        # A watched one, afterwards: once its event is counted, every earlier event was seen too.
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="watched", labels={"kubemart.io/watch": "true"}),
                string_data={"k": "v"},
            ),
        )
        wait_for(
            lambda: op.metric("kubemart_watched_values_events_total") >= 1,
            timeout=60,
            what="the watched Secret's event",
        )
        assert op.metric('kubemart_watched_values_events_total{kind="Secret"}') == 1
        assert op.metric('kubemart_reconciles_total{kind="appinstall"}') == reconciles, (
            "no AppInstall woke up"
        )
    finally:
        op.stop()
