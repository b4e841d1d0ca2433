"""The operator's Helm chart: it lints, renders objects the API server accepts, installs, and its RBAC is
enough for the operator (run with exactly its ServiceAccount's token) and no more for users."""

from __future__ import annotations

import json
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.apps import create_source, install, running
from support.cluster import BIN, ROOT, Cluster
from support.kube import Objects, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.tokens import token_kubeconfig
from support.wait import wait_for

CHART = ROOT / "charts" / "kubemart"


def helm(*args: str, cluster: Cluster | None = None) -> subprocess.CompletedProcess[str]:
    env = cluster.env() if cluster else None
    return subprocess.run(
        [str(BIN / "helm"), *args], capture_output=True, text=True, check=False, env=env, timeout=300
    )


def render(*sets: str, namespace: str = "kubemart", release: str = "km") -> list[dict[str, Any]]:
    args = [f"--set={s}" for s in sets]
    out = helm("template", release, str(CHART), "-n", namespace, *args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {[d['metadata']['name'] for d in found]}"
    return found[0]


# --- rendering, no cluster ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param((), id="default"),
        pytest.param(("watchNamespaces={a,b}",), id="namespaced"),
        pytest.param(("replicaCount=2",), id="two replicas"),
        pytest.param(("serviceMonitor.enabled=true", "dashboard.enabled=true"), id="monitoring"),
    ],
)
def test_chart_lints(sets: tuple[str, ...]) -> None:
    out = helm("lint", "--strict", str(CHART), *(f"--set={s}" for s in sets))
    assert out.returncode == 0, out.stdout + out.stderr


def test_default_image_is_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"kubemart:{version}"


def test_deployment_is_locked_down_and_probed() -> None:
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc = c["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in c["args"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["KUBEMART_CHART_CACHE_DIR"].startswith("/tmp/")
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    # Without an election, a rollout must never run two operators at once.
    assert one(render(), "Deployment")["spec"]["strategy"] == {"type": "Recreate"}


def test_values_map_to_every_setting() -> None:
    from kubemart.runtime.settings import Settings

    c = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"] for e in c["env"]}
    # helm_binary and cosign_binary are the image's own (its ENV); the rest come from values.
    image_own = {"helm_binary", "cosign_binary"}
    wanted = {f"KUBEMART_{name.upper()}" for name in Settings.model_fields if name not in image_own}
    # Set only when tenancy.defaultServiceAccount / settings.maxConcurrentHelmPerNamespace are.
    unset_by_default = {"KUBEMART_DEFAULT_SERVICE_ACCOUNT", "KUBEMART_MAX_CONCURRENT_HELM_PER_NAMESPACE"}
    assert wanted - unset_by_default <= env, wanted - env
    c = one(render("tenancy.defaultServiceAccount=apps"), "Deployment")["spec"]["template"]["spec"]
    assert {"name": "KUBEMART_DEFAULT_SERVICE_ACCOUNT", "value": "apps"} in c["containers"][0]["env"]
    # Every value is a valid setting: the operator would refuse to start otherwise.
    plain = {e["name"]: e["value"] for e in c["containers"][0]["env"] if e["name"].startswith("KUBEMART_")}
    Settings.model_validate({k.removeprefix("KUBEMART_").lower(): v for k, v in plain.items()})


def test_namespaced_mode_runs_with_roles_in_the_listed_namespaces_only() -> None:
    docs = render("watchNamespaces={a,b}", "rbac.chartContents=all")
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=a" in args
    assert "--namespace=b" in args
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Role"}
    assert roles == {
        ("a", "km-kubemart-operator"),
        ("b", "km-kubemart-operator"),
        ("kubemart", "km-kubemart-operator"),
    }
    cluster_role = one(docs, "ClusterRole", "km-kubemart-operator")
    resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert not resources & {"appinstalls", "payments", "secrets", "deployments"}, resources
    # The chart-contents role is only bound inside the listed namespaces.
    assert not [
        d for d in docs if d["kind"] == "ClusterRoleBinding" and "chart-contents" in d["metadata"]["name"]
    ]
    bound = {
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"].endswith("chart-contents")
    }
    assert bound == {"a", "b"}


def test_two_replicas_elect_a_leader_and_roll_without_overlap() -> None:
    docs = render("replicaCount=2")
    dep = one(docs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args
    assert "--leader-election-namespace=kubemart" in args
    assert "strategy" not in dep["spec"]  # a rolling update: the new pod stands by until the old one lets go
    role = one(docs, "Role", "km-kubemart-leader-election")
    assert {"leases"} == {r for rule in role["rules"] for r in rule["resources"]}
    assert not [d for d in render() if d["kind"] == "Role"]  # one replica: no Lease, no Role


def test_no_user_role_writes_status() -> None:
    docs = render()
    for d in docs:
        labels = d["metadata"].get("labels", {})
        if d["kind"] == "ClusterRole" and any(
            k.startswith("rbac.authorization.k8s.io/aggregate") for k in labels
        ):
            resources = {r for rule in d["rules"] for r in rule["resources"]}
            assert not {r for r in resources if r.endswith("/status")}, d["metadata"]["name"]


def test_service_monitor_scrapes_the_service_metrics_port() -> None:
    docs = render("serviceMonitor.enabled=true")
    sm, svc = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"metrics": 8081, "webhooks": 8082}
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert not [d for d in render() if d["kind"] == "ServiceMonitor"]


def test_dashboard_configmap_is_labelled_for_grafana() -> None:
    cm = one(render("dashboard.enabled=true"), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    source = CHART / "dashboards" / "kubemart.json"
    expected = source.read_text() if source.exists() else "{}"
    assert cm["data"]["kubemart.json"] == expected
    json.loads(cm["data"]["kubemart.json"])


def test_notes_carry_the_argocd_health_checks_when_asked(cluster: Cluster) -> None:
    # helm renders NOTES only on install; --dry-run=client creates nothing (it reads the server version).
    shown = helm(
        "install",
        "km",
        str(CHART),
        "--dry-run=client",
        "--set=argocd.healthChecksInNotes=true",
        cluster=cluster,
    )
    assert shown.returncode == 0, shown.stderr
    notes = shown.stdout.split("NOTES:", 1)[1]
    snippet = notes[notes.index("# Argo CD health checks") :].split("\nNote: ", 1)[0]
    expected = yaml.safe_load((ROOT / "docs" / "argocd" / "argocd-cm.yaml").read_text())
    assert yaml.safe_load(snippet) == expected
    hidden = helm("install", "km", str(CHART), "--dry-run=client", cluster=cluster)
    assert "resource.customizations.health" not in hidden.stdout.split("NOTES:", 1)[1]
    assert "argocd.healthChecksInNotes=true" in hidden.stdout


# --- against the cluster -------------------------------------------------------------------------------


@pytest.fixture
def fresh_namespaces(k8s: client.ApiClient) -> Iterator[list[str]]:
    core = client.CoreV1Api(k8s)
    names = [f"t-chart-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    for n in names:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=n)))
    yield names
    for n in names:
        core.delete_namespace(n, propagation_policy="Background")


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param((), id="default"),
        pytest.param(("watchNamespaces={W1,W2}",), id="namespaced"),
        pytest.param(("replicaCount=2",), id="two replicas"),
        pytest.param(("serviceMonitor.enabled=true", "dashboard.enabled=true"), id="monitoring"),
    ],
)
def test_rendered_objects_are_accepted_by_the_api_server(
    cluster: Cluster, crds: None, fresh_namespaces: list[str], sets: tuple[str, ...]
) -> None:
    home, w1, w2 = fresh_namespaces
    sets = tuple(s.replace("W1", w1).replace("W2", w2) for s in sets)
    docs = render(*sets, namespace=home, release=f"r{uuid.uuid4().hex[:6]}")
    # The Prometheus Operator's CRDs are not in this cluster; the ServiceMonitor's shape is checked in
    # test_service_monitor_scrapes_the_service_metrics_port instead.
    docs = [d for d in docs if d["kind"] != "ServiceMonitor"]
    out = subprocess.run(
        [str(BIN / "kubectl"), "apply", "--dry-run=server", "-f", "-"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        env=cluster.env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("(server dry run)") == len(docs), out.stdout


def helm_install(cluster: Cluster, release: str, namespace: str, *sets: str) -> None:
    out = helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--wait",
        "--timeout=3m",
        *(f"--set={s}" for s in sets),
        cluster=cluster,
    )
    assert out.returncode == 0, out.stderr


def can(cluster: Cluster, user: str, verb: str, what: str, namespace: str, *flags: str) -> bool:
    out = cluster.run(
        "kubectl", "auth", "can-i", verb, what, "-n", namespace, f"--as={user}", *flags, check=False
    )
    return out.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def installed(cluster: Cluster, crds: None) -> Iterator[tuple[str, str]]:
    """The chart installed cluster-wide: (release, namespace)."""
    release, namespace = f"km{uuid.uuid4().hex[:5]}", f"t-kubemart-{uuid.uuid4().hex[:5]}"
    cluster.run("kubectl", "create", "namespace", namespace)
    helm_install(cluster, release, namespace)
    yield release, namespace
    helm("uninstall", release, "-n", namespace, "--wait", cluster=cluster)
    cluster.run("kubectl", "delete", "namespace", namespace, "--wait=false")


def test_chart_installs_and_its_deployment_becomes_available(
    cluster: Cluster, installed: tuple[str, str]
) -> None:
    release, namespace = installed
    out = cluster.run("kubectl", "get", "deployment", f"{release}-kubemart", "-n", namespace, "-o", "json")
    dep = json.loads(out.stdout)
    assert dep["status"].get("availableReplicas") == 1
    sa = cluster.run("kubectl", "get", "serviceaccount", f"{release}-kubemart", "-n", namespace)
    assert sa.returncode == 0


def lifecycle_as_chart_account(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    chart_repo: ChartRepo,
    tmp_path: Path,
    *,
    release: str,
    home: str,
    namespace: str,
    env: dict[str, str] | None = None,
    **spec: str,
) -> None:
    """Install, upgrade, drift correction and uninstall, by an operator holding only the chart's token."""
    kubeconfig = token_kubeconfig(cluster, f"{release}-kubemart", home, tmp_path / "kubeconfig")
    op = OperatorProcess(
        cluster,
        kubeconfig=kubeconfig,
        extra_env={"KUBEMART_CHART_CACHE_DIR": str(tmp_path / "charts"), **(env or {})},
    )
    source = f"t-{uuid.uuid4().hex[:8]}"
    chart_repo.add_chart("hello", "0.1.0", reindex=False)
    chart_repo.add_chart("hello", "0.2.0")
    op.start()
    try:
        create_source(objects, source, chart_repo.url)
        wait_for(lambda: ready(objects.get("marketsources", source)), timeout=60, what="source Ready")

        install(objects, namespace, "web", source=source, app="hello", version="0.1.0", **spec)
        wait_for(lambda: running(objects, namespace, "web"), timeout=120, what="installed")

        objects.patch("appinstalls", "web", {"spec": {"version": "0.2.0"}}, namespace)
        wait_for(
            lambda: (
                (a := running(objects, namespace, "web")) and a["status"].get("installedVersion") == "0.2.0"
            ),
            timeout=120,
            what="upgraded to 0.2.0",
        )

        apps = client.AppsV1Api(k8s)
        uid = apps.read_namespaced_deployment("web", namespace).metadata.uid
        apps.delete_namespaced_deployment("web", namespace)
        wait_for(lambda: _uid(apps, "web", namespace) not in (None, uid), timeout=60, what="drift corrected")

        objects.delete("appinstalls", "web", namespace)
        wait_for(
            lambda: objects.get("appinstalls", "web", namespace) is None, timeout=120, what="uninstalled"
        )
        assert _uid(apps, "web", namespace) is None
        releases = cluster.run("helm", "list", "-n", namespace, "-q").stdout.split()
        assert releases == []
        objects.delete("marketsources", source)
    finally:
        op.stop()
    log = op.log()
    assert "Traceback" not in log
    assert _refused(log) == [], "the chart's RBAC is missing a rule"


def test_operator_with_exactly_the_chart_account_installs_upgrades_corrects_and_uninstalls(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    installed: tuple[str, str],
    namespace: str,
    chart_repo: ChartRepo,
    tmp_path: Path,
    shared_operator_paused: None,
) -> None:
    release, home = installed
    lifecycle_as_chart_account(
        cluster, k8s, objects, chart_repo, tmp_path, release=release, home=home, namespace=namespace
    )


def test_without_chart_contents_rights_the_operator_works_through_each_apps_account(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    fresh_namespaces: list[str],
    chart_repo: ChartRepo,
    tmp_path: Path,
    shared_operator_paused: None,
) -> None:
    """rbac.chartContents=none: the operator's own rules are enough when helm acts as the app's account."""
    home, namespace, _ = fresh_namespaces
    release = f"kc{uuid.uuid4().hex[:5]}"
    helm_install(cluster, release, home, "rbac.chartContents=none", "tenancy.requireServiceAccount=true")
    cluster.run("kubectl", "create", "serviceaccount", "deployer", "-n", namespace)
    cluster.run(
        "kubectl", "create", "rolebinding", "deployer", "--clusterrole=admin",
        f"--serviceaccount={namespace}:deployer", "-n", namespace,
    )  # fmt: skip
    try:
        lifecycle_as_chart_account(
            cluster,
            k8s,
            objects,
            chart_repo,
            tmp_path,
            release=release,
            home=home,
            namespace=namespace,
            env={"KUBEMART_REQUIRE_SERVICE_ACCOUNT": "true"},
            serviceAccountName="deployer",
        )
    finally:
        helm("uninstall", release, "-n", home, "--wait", cluster=cluster)


def _refused(log: str) -> list[str]:
    """Log lines about requests the API server refused (403)."""
    return [line for line in log.splitlines() if "Forbidden" in line or "forbidden" in line or " 403" in line]


def _uid(apps: client.AppsV1Api, name: str, namespace: str) -> str | None:
    try:
        return str(apps.read_namespaced_deployment(name, namespace).metadata.uid)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_edit_users_manage_apps_but_never_status_and_view_users_only_read(
    cluster: Cluster, objects: Objects, installed: tuple[str, str], namespace: str
) -> None:
    editor, viewer = f"alice-{uuid.uuid4().hex[:4]}", f"bob-{uuid.uuid4().hex[:4]}"
    cluster.run(
        "kubectl",
        "create",
        "rolebinding",
        "editor",
        "--clusterrole=edit",
        f"--user={editor}",
        "-n",
        namespace,
    )
    cluster.run(
        "kubectl",
        "create",
        "rolebinding",
        "viewer",
        "--clusterrole=view",
        f"--user={viewer}",
        "-n",
        namespace,
    )
    # The aggregation controller copies our rules into edit and view within moments.
    wait_for(
        lambda: can(cluster, editor, "create", "appinstalls.kubemart.io", namespace), timeout=30, what="edit"
    )
    wait_for(lambda: can(cluster, viewer, "get", "payments.kubemart.io", namespace), timeout=30, what="view")

    def kubectl_as(user: str, *args: str) -> subprocess.CompletedProcess[str]:
        return cluster.run("kubectl", f"--as={user}", "-n", namespace, *args, check=False)

    app = {
        "apiVersion": "kubemart.io/v1alpha1",
        "kind": "AppInstall",
        "metadata": {"name": "mine"},
        "spec": {"source": "demo", "app": "wiki"},
    }
    payment = {
        "apiVersion": "kubemart.io/v1alpha1",
        "kind": "Payment",
        "metadata": {"name": "mine"},
        "spec": {"source": "demo", "app": "wiki"},
    }
    for body in (app, payment):
        out = subprocess.run(
            [str(BIN / "kubectl"), f"--as={editor}", "-n", namespace, "create", "-f", "-"],
            input=json.dumps(body),
            capture_output=True,
            text=True,
            env=cluster.env(),
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
    patch = '{"status":{"phase":"Running"}}'
    for kind in ("appinstall", "payment"):
        out = kubectl_as(editor, "patch", kind, "mine", "--subresource=status", "--type=merge", "-p", patch)
        assert out.returncode != 0
        assert "forbidden" in out.stderr.lower(), out.stderr
        assert (
            kubectl_as(
                editor, "patch", kind, "mine", "--type=merge", "-p", '{"metadata":{"labels":{"a":"b"}}}'
            ).returncode
            == 0
        )
        assert kubectl_as(viewer, "get", kind, "mine").returncode == 0
        out = kubectl_as(viewer, "delete", kind, "mine")
        assert "forbidden" in out.stderr.lower(), out.stderr
    out = subprocess.run(
        [str(BIN / "kubectl"), f"--as={viewer}", "-n", namespace, "create", "-f", "-"],
        input=json.dumps({**app, "metadata": {"name": "theirs"}}),
        capture_output=True,
        text=True,
        env=cluster.env(),
        timeout=60,
    )
    assert "forbidden" in out.stderr.lower(), out.stderr
    for user in (editor, viewer):
        for verb in ("patch", "update"):
            for what in ("appinstalls.kubemart.io", "payments.kubemart.io"):
                assert not can(cluster, user, verb, what, namespace, "--subresource=status"), (
                    user,
                    verb,
                    what,
                )
    assert can(cluster, viewer, "list", "marketapps.kubemart.io", namespace)
    for kind in ("appinstall", "payment"):
        kubectl_as(editor, "delete", kind, "mine", "--wait=false")


def test_namespaced_chart_account_serves_listed_namespaces_and_ignores_others(
    cluster: Cluster,
    objects: Objects,
    fresh_namespaces: list[str],
    chart_repo: ChartRepo,
    tmp_path: Path,
    shared_operator_paused: None,
) -> None:
    home, listed, unlisted = fresh_namespaces
    release = f"kn{uuid.uuid4().hex[:5]}"
    helm_install(cluster, release, home, f"watchNamespaces={{{listed}}}")
    kubeconfig = token_kubeconfig(cluster, f"{release}-kubemart", home, tmp_path / "kubeconfig")
    op = OperatorProcess(
        cluster,
        kubeconfig=kubeconfig,
        args=("--namespace", listed),
        extra_env={"KUBEMART_CHART_CACHE_DIR": str(tmp_path / "charts")},
    )
    source = f"t-{uuid.uuid4().hex[:8]}"
    chart_repo.add_chart("hello", "0.1.0")
    op.start()
    try:
        create_source(objects, source, chart_repo.url)
        wait_for(lambda: ready(objects.get("marketsources", source)), timeout=60, what="source Ready")
        install(objects, unlisted, "web", source=source, app="hello", version="0.1.0")
        install(objects, listed, "web", source=source, app="hello", version="0.1.0")
        wait_for(lambda: running(objects, listed, "web"), timeout=120, what="listed namespace served")
        # Handled in order of arrival: by now the other one would have a finalizer or status.
        ignored = objects.get("appinstalls", "web", unlisted)
        assert ignored is not None
        assert not ignored.get("status")
        assert not ignored["metadata"].get("finalizers")
        objects.delete("appinstalls", "web", listed)
        wait_for(lambda: objects.get("appinstalls", "web", listed) is None, timeout=120, what="uninstalled")
        objects.delete("appinstalls", "web", unlisted)
        objects.delete("marketsources", source)
    finally:
        op.stop()
        helm("uninstall", release, "-n", home, "--wait", cluster=cluster)
    log = op.log()
    assert "Traceback" not in log
    assert _refused(log) == [], "the namespaced chart's RBAC is missing a rule"
