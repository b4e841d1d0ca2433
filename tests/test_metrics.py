"""The operator's /metrics: operations, helm subprocesses, corrections and apps by phase."""

from __future__ import annotations

import httpx
from kubernetes import client

from support.apps import install, running
from support.kube import Objects
from support.operator_process import OperatorProcess
from support.wait import wait_for


def test_metrics_count_operations_helm_runs_corrections_and_phases(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    helm_before = operator.metric("kubemart_helm_subprocesses_total")
    installs_before = operator.metric('kubemart_operations_total{type="install",result="Succeeded"}')
    install(objects, namespace, "metered", source=catalog, app="hello")
    wait_for(lambda: running(objects, namespace, "metered"), timeout=120, what="Running")
    assert operator.metric("kubemart_helm_subprocesses_total") > helm_before
    assert (
        operator.metric('kubemart_operations_total{type="install",result="Succeeded"}') == installs_before + 1
    )
    assert operator.metric('kubemart_apps{phase="Running"}') >= 1

    corrections = operator.metric("kubemart_corrections_total")
    client.CoreV1Api(k8s).delete_namespaced_config_map("metered-config", namespace)
    wait_for(
        lambda: operator.metric("kubemart_corrections_total") > corrections,
        timeout=30,
        what="correction counted",
    )

    text = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text
    assert "kubemart_operation_duration_seconds_bucket" in text
    assert "kubemart_reconciles_total" in text
