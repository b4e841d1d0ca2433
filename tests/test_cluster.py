"""The cluster under test is a real Kubernetes: scheduling, workloads, CRD validation, watches, helm."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from support.cluster import ROOT, Cluster
from support.wait import wait_for

CHARTS = Path(__file__).parent / "charts"


def pinned_kube_version() -> str:
    match = re.search(r"^KUBE_VERSION=(\S+)$", (ROOT / "hack" / "build.sh").read_text(), re.M)
    assert match, "hack/build.sh pins KUBE_VERSION"
    return match.group(1)


def test_nodes_are_ready(k8s: client.ApiClient) -> None:
    nodes = client.CoreV1Api(k8s).list_node().items
    ready = [
        n.metadata.name
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    ]
    assert len(ready) >= 2, f"want at least 2 Ready nodes, have {ready}"


def test_server_reports_the_pinned_version(cluster: Cluster, k8s: client.ApiClient) -> None:
    info = client.VersionApi(k8s).get_code()
    if cluster.external:
        assert not info.git_version.startswith("v0.0.0"), info.git_version
    else:
        assert info.git_version == pinned_kube_version()
    out = json.loads(cluster.run("kubectl", "version", "-o", "json").stdout)
    assert out["clientVersion"]["gitVersion"] == pinned_kube_version()
    assert out["serverVersion"]["gitVersion"] == info.git_version


def test_deployment_with_two_replicas_becomes_available(k8s: client.ApiClient, namespace: str) -> None:
    labels = {"app": "web"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="registry.invalid/web:1")]
                ),
            ),
        ),
    )
    apps = client.AppsV1Api(k8s)
    apps.create_namespaced_deployment(namespace, deployment)

    def available() -> bool:
        d = apps.read_namespaced_deployment("web", namespace)
        conditions = {c.type: c.status for c in d.status.conditions or []}
        return conditions.get("Available") == "True" and d.status.available_replicas == 2

    wait_for(available, timeout=90, what="Deployment web Available with 2 replicas")
    pods = client.CoreV1Api(k8s).list_namespaced_pod(namespace, label_selector="app=web").items
    running = [p for p in pods if p.status.phase == "Running"]
    assert len(running) == 2, [(p.metadata.name, p.status.phase) for p in pods]
    assert len({p.spec.node_name for p in running if p.spec.node_name}) >= 1


@pytest.fixture
def widget_crd(k8s: client.ApiClient) -> Iterator[tuple[str, str]]:
    group = f"t{uuid.uuid4().hex[:8]}.kubemart.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext = client.ApiextensionsV1Api(k8s)
    ext.create_custom_resource_definition(crd)

    def established() -> bool:
        got = ext.read_custom_resource_definition(f"widgets.{group}")
        return any(c.type == "Established" and c.status == "True" for c in got.status.conditions or [])

    wait_for(established, timeout=30, what="CRD Established")
    yield group, "v1"
    ext.delete_custom_resource_definition(f"widgets.{group}")


def test_crd_schema_rejects_invalid_objects_and_prunes_unknown_fields(
    k8s: client.ApiClient, namespace: str, widget_crd: tuple[str, str]
) -> None:
    group, version = widget_crd
    custom = client.CustomObjectsApi(k8s)

    def create(name: str, spec: dict[str, object]) -> dict[str, object]:
        body = {
            "apiVersion": f"{group}/{version}",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": spec,
        }
        result: dict[str, object] = wait_for(
            lambda: _create_or_reject(custom, group, version, namespace, body), timeout=30, what="create"
        )
        return result

    rejected = create("bad", {"size": 0})
    assert rejected["status"] == 422, rejected
    assert "spec.size" in str(rejected["message"])

    create("good", {"size": 3, "colour": "blue"})
    stored = custom.get_namespaced_custom_object(group, version, namespace, "widgets", "good")
    assert stored["spec"] == {"size": 3}, "the unknown field `colour` is pruned"


def _create_or_reject(
    custom: client.CustomObjectsApi, group: str, version: str, namespace: str, body: dict[str, object]
) -> dict[str, object] | None:
    try:
        custom.create_namespaced_custom_object(group, version, namespace, "widgets", body)
    except ApiException as exc:
        if exc.status == 404:  # the new resource is not served yet
            return None
        return {"status": exc.status, "message": exc.body}
    return {"status": 201, "message": ""}


def test_watch_sees_add_modify_delete(k8s: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(k8s)
    seen: list[tuple[str, str]] = []
    done = threading.Event()
    w = watch.Watch()

    # Watching from the list's resourceVersion sees every change after it, however late it connects.
    since = core.list_namespaced_config_map(namespace).metadata.resource_version

    def follow() -> None:
        for event in w.stream(
            core.list_namespaced_config_map, namespace, resource_version=since, timeout_seconds=60
        ):
            obj = event["object"]
            if obj.metadata.name == "watched":
                seen.append((event["type"], (obj.data or {}).get("k", "")))
            if event["type"] == "DELETED" and obj.metadata.name == "watched":
                done.set()
                w.stop()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"k": "1"})
    core.create_namespaced_config_map(namespace, cm)
    core.patch_namespaced_config_map("watched", namespace, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("watched", namespace)
    assert done.wait(60), f"watch saw only {seen}"
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


def test_helm_installs_a_chart_and_lists_it_deployed(cluster: Cluster, namespace: str) -> None:
    chart = str(CHARTS / "hello")
    cluster.run("helm", "install", "hello", chart, "-n", namespace, "--wait", "--timeout", "2m", timeout=180)
    releases = json.loads(cluster.run("helm", "list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"], r["chart"]) for r in releases] == [("hello", "deployed", "hello-0.1.0")]
    cm = cluster.run(
        "kubectl", "-n", namespace, "get", "configmap", "hello-config", "-o", "jsonpath={.data.message}"
    )
    assert cm.stdout == "hello"
