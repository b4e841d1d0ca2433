"""Two replicas, one at work: the Lease decides who reconciles, and SIGTERM hands over within seconds."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from kubernetes import client

from support.apps import create_source, install, running
from support.cluster import Cluster
from support.kube import Objects, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for

STARTED = "kubemart operator"  # kopf's startup handler logs "kubemart operator <version> started"


def _replica(cluster: Cluster, namespace: str, lease: str, cache: Path) -> OperatorProcess:
    return OperatorProcess(
        cluster,
        args=(
            "--leader-elect",
            "--leader-election-namespace",
            namespace,
            "--leader-election-name",
            lease,
        ),
        extra_env={"KUBEMART_CHART_CACHE_DIR": str(cache)},
    )


def _holder(k8s: client.ApiClient, namespace: str, lease: str) -> str:
    spec = client.CoordinationV1Api(k8s).read_namespaced_lease(lease, namespace).spec
    return str(spec.holder_identity or "")


def test_only_the_lease_holder_reconciles_and_sigterm_hands_over(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    namespace: str,
    chart_repo: ChartRepo,
    tmp_path: Path,
    shared_operator_paused: None,
) -> None:
    lease = f"kubemart-{uuid.uuid4().hex[:6]}"
    first = _replica(cluster, namespace, lease, tmp_path / "a")
    second = _replica(cluster, namespace, lease, tmp_path / "b")
    source = f"t-ha-{uuid.uuid4().hex[:6]}"
    try:
        first.start()
        wait_for(lambda: STARTED in first.log(), timeout=30, what="first replica leading")
        second.start()  # healthy as a standby: its liveness endpoint answers while it waits
        wait_for(lambda: "waiting to lead" in second.log(), timeout=30, what="second replica standing by")
        leader = _holder(k8s, namespace, lease)

        chart_repo.add_chart("hello", "0.1.0")
        create_source(objects, source, chart_repo.url)
        wait_for(lambda: ready(objects.get("marketsources", source)), timeout=60, what="source Ready")
        install(objects, namespace, "before", source=source, app="hello", version="0.1.0")
        wait_for(lambda: running(objects, namespace, "before"), timeout=120, what="first app Running")
        # The standby never started kopf, so it has reconciled nothing.
        assert STARTED not in second.log()
        assert "leading" not in second.log()
        assert _holder(k8s, namespace, lease) == leader

        signalled = time.monotonic()
        first.stop()
        assert first.proc is not None
        assert first.proc.returncode == 0, first.log()
        wait_for(lambda: STARTED in second.log(), timeout=30, what="second replica taking over")
        took = time.monotonic() - signalled
        # From SIGTERM: kopf's stop, the release, then the standby's next 2 s poll; far below the 15 s
        # a Lease takes to expire (kopf once idled 5 s on its stop-flag waiter before returning).
        assert took < 5, f"hand-over took {took:.1f}s"
        assert _holder(k8s, namespace, lease) not in ("", leader)

        install(objects, namespace, "after", source=source, app="hello", version="0.1.0")
        wait_for(lambda: running(objects, namespace, "after"), timeout=120, what="app created after Running")
        print(f"hand-over after SIGTERM: {took:.1f}s")
        for name in ("before", "after"):
            objects.delete("appinstalls", name, namespace)
        wait_for(
            lambda: not objects.list("appinstalls", namespace=namespace), timeout=120, what="apps uninstalled"
        )
    finally:
        first.stop()
        second.stop()
        objects.delete("marketsources", source)
    assert "Traceback" not in first.log() + second.log()


def test_a_crashed_leader_is_replaced_once_its_lease_expires(
    cluster: Cluster,
    k8s: client.ApiClient,
    crds: None,
    namespace: str,
    tmp_path: Path,
    shared_operator_paused: None,
) -> None:
    lease = f"kubemart-{uuid.uuid4().hex[:6]}"
    first = _replica(cluster, namespace, lease, tmp_path / "a")
    second = _replica(cluster, namespace, lease, tmp_path / "b")
    try:
        first.start()
        wait_for(lambda: STARTED in first.log(), timeout=30, what="first replica leading")
        second.start()
        wait_for(lambda: "waiting to lead" in second.log(), timeout=30, what="second replica standing by")
        leader = _holder(k8s, namespace, lease)
        first.crash()  # SIGKILL: the Lease is not released
        crashed = time.monotonic()
        wait_for(lambda: STARTED in second.log(), timeout=40, what="second replica taking over")
        took = time.monotonic() - crashed
        # Not before the 15 s lease duration has passed since the last renewal (at most 2 s before the crash).
        assert 12 < took < 25, f"took over after {took:.1f}s"
        assert _holder(k8s, namespace, lease) not in ("", leader)
        print(f"take-over after SIGKILL: {took:.1f}s")
    finally:
        first.stop()
        second.stop()
