"""Status correction: drift is detected within seconds of a change and corrected (or reported);
workload health, stop and resume show in the phase."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from support.apps import handled, install, request_reconcile, running
from support.kube import Objects, condition
from support.operator_process import OperatorProcess
from support.wait import wait_for


def events(objects: Objects, name: str, namespace: str, reason: str) -> list[str]:
    return [m for _, r, m in objects.events_for(name, namespace) if r == reason]


def _exists(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.mark.parametrize("kind", ["Deployment", "Service", "ConfigMap"])
def test_deleted_object_comes_back_within_seconds(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
    kind: str,
) -> None:
    install(objects, namespace, "web", source=catalog, app="hello")
    wait_for(lambda: running(objects, namespace, "web"), timeout=120, what="Running")
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    read, delete = {
        "Deployment": (
            lambda: apps.read_namespaced_deployment("web", namespace),
            lambda: apps.delete_namespaced_deployment("web", namespace),
        ),
        "Service": (
            lambda: core.read_namespaced_service("web", namespace),
            lambda: core.delete_namespaced_service("web", namespace),
        ),
        "ConfigMap": (
            lambda: core.read_namespaced_config_map("web-config", namespace),
            lambda: core.delete_namespaced_config_map("web-config", namespace),
        ),
    }[kind]
    uid = read().metadata.uid
    delete()
    started = time.monotonic()
    wait_for(
        lambda: _exists(read) and read().metadata.uid != uid,
        timeout=30,
        interval=0.1,
        what=f"{kind} recreated",
    )
    assert time.monotonic() - started < 10, "detected by watch, not at the next interval"
    app = wait_for(
        lambda: (
            (a := objects.get("appinstalls", "web", namespace))
            and (a["status"].get("corrections") or {}).get("count")
            and a
        ),
        timeout=30,
        what="correction counted",
    )
    assert kind in app["status"]["corrections"]["lastSummary"]
    wait_for(
        lambda: events(objects, "web", namespace, "DriftCorrected"), timeout=30, what="DriftCorrected event"
    )


def test_changed_fields_are_reverted_but_fields_the_chart_does_not_set_are_not_drift(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "edit", source=catalog, app="hello", values={"replicaCount": 2})
    wait_for(lambda: running(objects, namespace, "edit"), timeout=120, what="Running")
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    core.patch_namespaced_config_map("edit-config", namespace, {"data": {"message": "tampered"}})
    apps.patch_namespaced_deployment_scale("edit", namespace, {"spec": {"replicas": 5}})
    # A label nobody's chart sets is someone else's business.
    core.patch_namespaced_service("edit", namespace, {"metadata": {"labels": {"team": "a"}}})
    wait_for(
        lambda: core.read_namespaced_config_map("edit-config", namespace).data == {"message": "hello"},
        timeout=30,
        what="ConfigMap reverted",
    )
    wait_for(
        lambda: apps.read_namespaced_deployment("edit", namespace).spec.replicas == 2,
        timeout=30,
        what="replicas reverted",
    )
    assert core.read_namespaced_service("edit", namespace).metadata.labels.get("team") == "a"


def test_replicas_the_chart_does_not_set_are_left_to_others(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "hpa", source=catalog, app="hello", values={"replicaCount": None})
    wait_for(lambda: running(objects, namespace, "hpa"), timeout=120, what="Running")
    apps = client.AppsV1Api(k8s)
    apps.patch_namespaced_deployment_scale("hpa", namespace, {"spec": {"replicas": 3}})
    # A barrier: a drift correction elsewhere in the release proves the app was looked at since.
    client.CoreV1Api(k8s).patch_namespaced_config_map("hpa-config", namespace, {"data": {"message": "x"}})
    wait_for(
        lambda: (
            client.CoreV1Api(k8s).read_namespaced_config_map("hpa-config", namespace).data
            == {"message": "hello"}
        ),
        timeout=30,
        what="the app was checked",
    )
    assert apps.read_namespaced_deployment("hpa", namespace).spec.replicas == 3


def test_warn_mode_reports_and_does_not_correct(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "warn", source=catalog, app="hello", driftDetection={"mode": "warn"})
    wait_for(lambda: running(objects, namespace, "warn"), timeout=120, what="Running")
    core = client.CoreV1Api(k8s)
    core.patch_namespaced_config_map("warn-config", namespace, {"data": {"message": "tampered"}})
    wait_for(
        lambda: events(objects, "warn", namespace, "DriftDetected"), timeout=30, what="DriftDetected event"
    )
    cond = wait_for(
        lambda: (
            (c := condition(objects.get("appinstalls", "warn", namespace)))
            and "Drift detected" in c["message"]
            and c
        ),
        timeout=30,
        what="drift in the Ready message",
    )
    assert "ConfigMap" in cond["message"]
    assert core.read_namespaced_config_map("warn-config", namespace).data == {"message": "tampered"}


def test_stop_scales_to_zero_and_resume_restores(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "pause", source=catalog, app="hello", values={"replicaCount": 2})
    wait_for(lambda: running(objects, namespace, "pause"), timeout=120, what="Running")
    apps = client.AppsV1Api(k8s)
    objects.patch("appinstalls", "pause", {"spec": {"stopped": True}}, namespace)
    wait_for(
        lambda: (
            (objects.get("appinstalls", "pause", namespace) or {}).get("status", {}).get("phase") == "Stopped"
        ),
        timeout=60,
        what="Stopped",
    )
    assert apps.read_namespaced_deployment("pause", namespace).spec.replicas == 0
    history = objects.get("appinstalls", "pause", namespace)["status"]["history"]  # type: ignore[index]
    assert len(history) == 1, "a stop is not a helm operation"
    objects.patch("appinstalls", "pause", {"spec": {"stopped": False}}, namespace)
    wait_for(lambda: running(objects, namespace, "pause"), timeout=60, what="Running again")
    assert apps.read_namespaced_deployment("pause", namespace).spec.replicas == 2


def test_unhealthy_workload_makes_the_app_degraded(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "sick", source=catalog, app="hello", driftDetection={"mode": "disabled"})
    wait_for(lambda: running(objects, namespace, "sick"), timeout=120, what="Running")
    apps = client.AppsV1Api(k8s)
    # Pods of a new template that no node can take: the Deployment loses availability.
    apps.patch_namespaced_deployment(
        "sick",
        namespace,
        {
            "spec": {
                "strategy": {"type": "Recreate", "rollingUpdate": None},
                "template": {"spec": {"nodeSelector": {"nowhere": "x"}}},
            }
        },
    )
    cond = wait_for(
        lambda: (
            (a := objects.get("appinstalls", "sick", namespace))
            and a["status"].get("phase") == "Degraded"
            and condition(a)
        ),
        timeout=60,
        what="Degraded",
    )
    assert cond["reason"] == "WorkloadsNotReady"
    assert "Deployment sick" in cond["message"]
    apps.patch_namespaced_deployment(
        "sick", namespace, [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]
    )
    wait_for(lambda: running(objects, namespace, "sick"), timeout=60, what="Running again")


def test_suspend_pauses_everything_and_resume_catches_up(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "held", source=catalog, app="hello", version="0.1.0")
    wait_for(lambda: running(objects, namespace, "held"), timeout=120, what="Running")
    core = client.CoreV1Api(k8s)
    objects.patch("appinstalls", "held", {"spec": {"suspend": True, "version": "0.2.0"}}, namespace)
    wait_for(
        lambda: (
            (objects.get("appinstalls", "held", namespace) or {}).get("status", {}).get("phase")
            == "Suspended"
        ),
        timeout=30,
        what="Suspended",
    )
    core.delete_namespaced_config_map("held-config", namespace)
    # A barrier: the retry request is handled after the deletion's event, and still nothing is done.
    stamp = request_reconcile(objects, "appinstalls", "held", namespace)
    wait_for(
        lambda: handled(objects, "appinstalls", "held", stamp, namespace),
        timeout=30,
        what="handled while suspended",
    )
    assert not _exists(lambda: core.read_namespaced_config_map("held-config", namespace)), (
        "no correction while suspended"
    )
    assert objects.get("appinstalls", "held", namespace)["status"]["installedVersion"] == "0.1.0", (
        "no upgrade"
    )  # type: ignore[index]

    objects.patch("appinstalls", "held", {"spec": {"suspend": False}}, namespace)
    wait_for(
        lambda: (a := running(objects, namespace, "held")) and a["status"]["installedVersion"] == "0.2.0",
        timeout=120,
        what="upgraded once resumed",
    )
    wait_for(
        lambda: _exists(lambda: core.read_namespaced_config_map("held-config", namespace)),
        timeout=30,
        what="ConfigMap back",
    )
