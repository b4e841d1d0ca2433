"""AppInstall: install, upgrade and uninstall apps from the catalog through the real helm CLI."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from support.apps import SCHEMA, handled, install, request_reconcile, running
from support.cluster import Cluster
from support.kube import Objects, condition
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for


def helm_releases(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return json.loads(cluster.run("helm", "list", "-n", namespace, "-a", "-o", "json").stdout)  # type: ignore[no-any-return]


def test_install_upgrade_and_uninstall(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    catalog: str,
    namespace: str,
    chart_repo: ChartRepo,
) -> None:
    install(
        objects, namespace, "web", source=catalog, app="hello", version="~0.1.0", values={"message": "one"}
    )
    app = wait_for(lambda: running(objects, namespace, "web"), timeout=120, what="web Running")
    status = app["status"]
    assert status["installedVersion"] == "0.1.0"
    assert status["releaseRevision"] == 1
    assert status["chartDigest"]
    assert status["appliedHash"].startswith("sha256:")
    assert {"name": "web:http", "url": f"http://web.{namespace}.svc:80"} in status["entrances"]
    assert status["history"][0]["operation"] == "install"
    assert status["history"][0]["result"] == "Succeeded"
    assert [(r["name"], r["status"], r["chart"]) for r in helm_releases(cluster, namespace)] == [
        ("web", "deployed", "hello-0.1.0")
    ]
    core = client.CoreV1Api(k8s)
    assert core.read_namespaced_config_map("web-config", namespace).data == {"message": "one"}

    # A values change upgrades.
    objects.patch("appinstalls", "web", {"spec": {"values": {"message": "two"}}}, namespace)
    wait_for(
        lambda: (running(objects, namespace, "web") or {}).get("status", {}).get("releaseRevision") == 2,
        timeout=120,
        what="upgrade to revision 2",
    )
    assert core.read_namespaced_config_map("web-config", namespace).data == {"message": "two"}

    # A version change upgrades.
    objects.patch("appinstalls", "web", {"spec": {"version": "0.2.0"}}, namespace)
    app = wait_for(
        lambda: (
            (a := running(objects, namespace, "web")) and a["status"]["installedVersion"] == "0.2.0" and a
        ),
        timeout=120,
        what="upgrade to 0.2.0",
    )
    assert app["status"]["releaseRevision"] == 3
    assert [h["operation"] for h in app["status"]["history"]] == ["upgrade", "upgrade", "install"]

    # Deleting the AppInstall uninstalls the release.
    objects.delete("appinstalls", "web", namespace)
    wait_for(
        lambda: objects.get("appinstalls", "web", namespace) is None, timeout=120, what="AppInstall gone"
    )
    assert helm_releases(cluster, namespace) == []


def test_valuesfrom_configmap_change_upgrades_and_values_win(
    k8s: client.ApiClient, objects: Objects, catalog: str, namespace: str
) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="private"),
            string_data={"extra.yaml": "image: registry.invalid/private:1\n"},
        ),
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            # Opted in to being watched: a change upgrades at once (others are read at each reconcile).
            metadata=client.V1ObjectMeta(name="settings", labels={"kubemart.io/watch": "true"}),
            data={"values.yaml": "message: from-cm\nreplicaCount: 2\n"},
        ),
    )
    install(
        objects,
        namespace,
        "cfg",
        source=catalog,
        app="hello",
        valuesFrom=[
            {"kind": "ConfigMap", "name": "settings"},
            {"kind": "Secret", "name": "private", "key": "extra.yaml"},
        ],
        values={"replicaCount": 1},
    )
    wait_for(lambda: running(objects, namespace, "cfg"), timeout=120, what="cfg Running")
    assert core.read_namespaced_config_map("cfg-config", namespace).data == {"message": "from-cm"}
    assert client.AppsV1Api(k8s).read_namespaced_deployment("cfg", namespace).spec.replicas == 1, (
        "values win over valuesFrom"
    )

    core.patch_namespaced_config_map("settings", namespace, {"data": {"values.yaml": "message: changed\n"}})
    wait_for(
        lambda: core.read_namespaced_config_map("cfg-config", namespace).data == {"message": "changed"},
        timeout=120,
        what="ConfigMap change applied",
    )


def test_unwatched_values_are_read_at_the_next_reconcile_not_on_change(
    k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="plain"), data={"values.yaml": "message: one\n"}
        ),
    )
    install(
        objects,
        namespace,
        "plain",
        source=catalog,
        app="hello",
        valuesFrom=[{"kind": "ConfigMap", "name": "plain"}],
    )
    wait_for(lambda: running(objects, namespace, "plain"), timeout=120, what="Running")
    events_before = operator.metric('kubemart_watched_values_events_total{kind="ConfigMap"}')
    core.patch_namespaced_config_map("plain", namespace, {"data": {"values.yaml": "message: two\n"}})
    stamp = request_reconcile(objects, "appinstalls", "plain", namespace)
    wait_for(
        lambda: handled(objects, "appinstalls", "plain", stamp, namespace), timeout=60, what="retry handled"
    )
    wait_for(
        lambda: core.read_namespaced_config_map("plain-config", namespace).data == {"message": "two"},
        timeout=120,
        what="the new values applied at the reconcile",
    )
    assert operator.metric('kubemart_watched_values_events_total{kind="ConfigMap"}') == events_before, (
        "an unlabelled ConfigMap is not watched"
    )


def test_new_catalog_version_matching_the_range_upgrades(
    objects: Objects, catalog: str, namespace: str, chart_repo: ChartRepo
) -> None:
    install(objects, namespace, "ranged", source=catalog, app="hello", version="^0.2.0")
    wait_for(lambda: running(objects, namespace, "ranged"), timeout=120, what="Running")
    chart_repo.add_chart("hello", "0.2.5", schema=SCHEMA)
    request_reconcile(objects, "marketsources", catalog)
    wait_for(
        lambda: (a := running(objects, namespace, "ranged")) and a["status"]["installedVersion"] == "0.2.5",
        timeout=120,
        what="upgraded to 0.2.5",
    )


def test_metadata_changes_do_not_run_helm(objects: Objects, catalog: str, namespace: str) -> None:
    install(objects, namespace, "quiet", source=catalog, app="hello")
    app = wait_for(lambda: running(objects, namespace, "quiet"), timeout=120, what="Running")
    revision = app["status"]["releaseRevision"]
    # What Argo CD writes: its tracking annotation and a label. Then a retry request, which is handled
    # after them: by then the metadata events have been seen too.
    objects.patch(
        "appinstalls",
        "quiet",
        {
            "metadata": {
                "annotations": {"argocd.argoproj.io/tracking-id": "demo:kubemart.io/AppInstall:x/quiet"},
                "labels": {"team": "a"},
            }
        },
        namespace,
    )
    stamp = request_reconcile(objects, "appinstalls", "quiet", namespace)
    app = wait_for(
        lambda: handled(objects, "appinstalls", "quiet", stamp, namespace), timeout=60, what="retry handled"
    )
    assert app["status"]["releaseRevision"] == revision, "no helm upgrade ran"
    assert len(app["status"]["history"]) == 1


def test_two_installs_may_not_claim_one_release(objects: Objects, catalog: str, namespace: str) -> None:
    install(objects, namespace, "first", source=catalog, app="hello", releaseName="shared")
    wait_for(lambda: running(objects, namespace, "first"), timeout=120, what="first Running")
    install(objects, namespace, "second", source=catalog, app="hello", releaseName="shared")
    cond = wait_for(
        lambda: (c := condition(objects.get("appinstalls", "second", namespace), "Stalled")) and c,
        timeout=60,
        what="Stalled",
    )
    assert cond["reason"] == "ReleaseConflict"
    assert f"{namespace}/first" in cond["message"]
    assert objects.get("appinstalls", "first", namespace)["status"]["releaseRevision"] == 1  # type: ignore[index]


def test_deleting_after_the_release_is_gone_still_finishes(
    cluster: Cluster, objects: Objects, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "gone", source=catalog, app="hello")
    wait_for(lambda: running(objects, namespace, "gone"), timeout=120, what="Running")
    cluster.run("helm", "uninstall", "gone", "-n", namespace)
    objects.delete("appinstalls", "gone", namespace)
    wait_for(
        lambda: objects.get("appinstalls", "gone", namespace) is None, timeout=60, what="finalizer removed"
    )


def test_global_helm_limit_runs_one_operation_at_a_time(
    cluster: Cluster, objects: Objects, catalog: str, namespace: str, operator_session: OperatorProcess
) -> None:
    # A second operator would fight the shared one; stop it for this test and bring it back after.
    operator_session.stop()
    limited = OperatorProcess(cluster, extra_env={"KUBEMART_MAX_CONCURRENT_HELM": "1"})
    limited.start()
    try:
        for i in range(3):
            install(objects, namespace, f"one-{i}", source=catalog, app="hello")
        for i in range(3):
            wait_for(
                lambda i=i: running(objects, namespace, f"one-{i}"), timeout=180, what=f"one-{i} Running"
            )
        in_flight, most = 0, 0
        for line in limited.log().splitlines():
            # `kubemart.helm [AppInstall ns/name] running command: ...`
            if "kubemart.helm" in line and "] running command:" in line:
                in_flight += 1
            elif "kubemart.helm" in line and any(
                f"] command {end}:" in line for end in ("succeeded", "failed", "canceled")
            ):
                in_flight -= 1
            most = max(most, in_flight)
        assert most == 1
    finally:
        limited.stop()
        operator_session.start()


def test_entrances_list_services_and_ingress_hosts(objects: Objects, catalog: str, namespace: str) -> None:
    install(
        objects,
        namespace,
        "open",
        source=catalog,
        app="hello",
        values={"ingress": {"host": "notes.example.test", "tls": True}},
    )
    app = wait_for(lambda: running(objects, namespace, "open"), timeout=120, what="Running")
    assert {"name": "open:http", "url": f"http://open.{namespace}.svc:80"} in app["status"]["entrances"]
    assert {"name": "open:notes.example.test", "url": "https://notes.example.test/"} in app["status"][
        "entrances"
    ]
