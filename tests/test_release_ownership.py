"""The operator acts only on releases it installed: never upgrades, rolls back or uninstalls a stranger's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from support.apps import install, running
from support.cluster import ROOT, Cluster
from support.kube import Objects, condition
from support.operator_process import OperatorProcess
from support.wait import wait_for

HELLO = ROOT / "tests" / "charts" / "hello"


def releases(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return json.loads(cluster.run("helm", "list", "-n", namespace, "-a", "-o", "json").stdout)  # type: ignore[no-any-return]


@pytest.fixture
def admin_release(cluster: Cluster, k8s: client.ApiClient, namespace: str) -> Iterator[str]:
    """A release an admin installed with raw helm in the tenant's namespace, holding a ClusterRole."""
    role = f"{namespace}-admin-role"
    cluster.run(
        "helm",
        "install",
        "shared",
        str(HELLO),
        "-n",
        namespace,
        "--set",
        "replicaCount=1",
        "--wait",
        "--timeout",
        "120s",
    )
    # The admin's ClusterRole, marked as part of that release.
    rbac = client.RbacAuthorizationV1Api(k8s)
    rbac.create_cluster_role(
        client.V1ClusterRole(
            metadata=client.V1ObjectMeta(
                name=role,
                labels={"app.kubernetes.io/managed-by": "Helm"},
                annotations={
                    "meta.helm.sh/release-name": "shared",
                    "meta.helm.sh/release-namespace": namespace,
                },
            ),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get"])],
        )
    )
    yield role
    rbac.delete_cluster_role(role)


def _stalled_not_owned(objects: Objects, namespace: str, name: str) -> dict[str, Any] | None:
    c = condition(objects.get("appinstalls", name, namespace), "Stalled")
    return c if c and c["reason"] == "ReleaseNotOwned" else None


def test_a_release_installed_by_someone_else_is_not_taken_over_nor_uninstalled(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
    admin_release: str,
) -> None:
    log_start = operator.log_size()
    install(objects, namespace, "shared", source=catalog, app="hello", version="0.2.0")
    cond = wait_for(
        lambda: _stalled_not_owned(objects, namespace, "shared"), timeout=60, what="ReleaseNotOwned"
    )
    assert "kubemart.io/release-adoption=allowed" in cond["message"], "the message says how to hand it over"
    ready = condition(objects.get("appinstalls", "shared", namespace))
    assert ready is not None
    assert ready["status"] == "False"
    assert [(r["name"], r["revision"], r["chart"]) for r in releases(cluster, namespace)] == [
        ("shared", "1", "hello-0.1.0")
    ], "the admin's release was not upgraded"

    objects.delete("appinstalls", "shared", namespace)
    wait_for(lambda: objects.get("appinstalls", "shared", namespace) is None, timeout=60, what="deleted")
    assert [r["status"] for r in releases(cluster, namespace)] == ["deployed"], "not uninstalled"
    client.RbacAuthorizationV1Api(k8s).read_cluster_role(admin_release)  # still there
    assert any(r == "UninstallSkipped" for _, r, _ in objects.events_for("shared", namespace))
    assert "helm uninstall shared" not in operator.log(log_start)
    assert "helm upgrade shared" not in operator.log(log_start)


def test_forged_owner_labels_prove_nothing(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
    admin_release: str,
) -> None:
    # A tenant who may write Secrets labels the admin's release as if Kubemart had installed it for them.
    core = client.CoreV1Api(k8s)
    core.patch_namespaced_secret(
        "sh.helm.release.v1.shared.v1",
        namespace,
        {
            "metadata": {
                "labels": {"kubemart.io/owner-namespace": namespace, "kubemart.io/owner-name": "shared"}
            }
        },
    )
    install(objects, namespace, "shared", source=catalog, app="hello", version="0.2.0")
    wait_for(lambda: _stalled_not_owned(objects, namespace, "shared"), timeout=60, what="ReleaseNotOwned")
    objects.delete("appinstalls", "shared", namespace)
    wait_for(lambda: objects.get("appinstalls", "shared", namespace) is None, timeout=60, what="deleted")
    assert [(r["status"], r["chart"]) for r in releases(cluster, namespace)] == [("deployed", "hello-0.1.0")]
    client.RbacAuthorizationV1Api(k8s).read_cluster_role(admin_release)


def test_adoption_needs_the_apps_request_and_the_admins_consent(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
) -> None:
    cluster.run("helm", "install", "legacy", str(HELLO), "-n", namespace, "--wait", "--timeout", "120s")
    objects.create(
        "appinstalls",
        {
            "kind": "AppInstall",
            "metadata": {"name": "legacy", "annotations": {"kubemart.io/adopt-release": "true"}},
            "spec": {"source": catalog, "app": "hello", "version": "0.2.0"},
        },
        namespace,
    )
    # Asked by the app, not yet allowed by an admin.
    wait_for(lambda: _stalled_not_owned(objects, namespace, "legacy"), timeout=60, what="ReleaseNotOwned")
    client.CoreV1Api(k8s).patch_namespace(
        namespace, {"metadata": {"labels": {"kubemart.io/release-adoption": "allowed"}}}
    )
    objects.patch(
        "appinstalls",
        "legacy",
        {"metadata": {"annotations": {"kubemart.io/reconcile-requested-at": "now"}}},
        namespace,
    )
    app = wait_for(lambda: running(objects, namespace, "legacy"), timeout=120, what="adopted and Running")
    assert app["status"]["installedVersion"] == "0.2.0"
    rel = releases(cluster, namespace)
    assert [(r["chart"], r["revision"]) for r in rel] == [("hello-0.2.0", "2")], "upgraded in place"
    secret = client.CoreV1Api(k8s).read_namespaced_secret("sh.helm.release.v1.legacy.v2", namespace)
    assert secret.metadata.labels["kubemart.io/owner-name"] == "legacy"
    # Now it is the app's own: deleting the app uninstalls it.
    objects.delete("appinstalls", "legacy", namespace)
    wait_for(lambda: releases(cluster, namespace) == [], timeout=120, what="uninstalled")


def test_own_release_is_marked_and_recorded(
    k8s: client.ApiClient, objects: Objects, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "mine", source=catalog, app="hello")
    wait_for(
        lambda: (
            (a := running(objects, namespace, "mine"))
            and (a["status"].get("ownedRelease") or {}).get("secretUid")
        ),
        timeout=120,
        what="Running, with the release's Secret uid recorded",
    )
    app = objects.get("appinstalls", "mine", namespace)
    secret = client.CoreV1Api(k8s).read_namespaced_secret("sh.helm.release.v1.mine.v1", namespace)
    assert app["status"]["ownedRelease"]["secretUid"] == secret.metadata.uid  # type: ignore[index]
    assert secret.metadata.labels["kubemart.io/owner-namespace"] == namespace
