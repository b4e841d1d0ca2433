"""Tenancy: an app's helm commands and corrections use its ServiceAccount's permissions, and an app
reaches another namespace only when the operator's settings or that account's own rights allow it.

Runs operators of its own (the settings differ from the shared one's), against the real apiserver
with RBAC, and the real helm CLI.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.core_v1 import ConfigMap

from kubemart.adapters.kube import Kube, KubeError
from kubemart.domain.tenancy import Account
from support.apps import create_source, install, request_reconcile, running
from support.cluster import Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for

# Objects a tenant's account is not given, switched on by values.
FORBIDDEN_TEMPLATES = {
    "tenancy.yaml": """\
{{- if .Values.clusterRole }}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Release.Name }}-{{ .Release.Namespace }}
rules: []
{{- end }}
{{- with .Values.otherNamespace }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-elsewhere
  namespace: {{ . }}
data:
  where: elsewhere
{{- end }}
"""
}

ALL = ["get", "list", "watch", "create", "update", "patch", "delete"]
READ = ["get", "list", "watch"]
# What installing the hello chart with `helm --wait` needs, and nothing more.
HELLO_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["secrets", "configmaps", "services"], "verbs": ALL},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ALL},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": READ},
    {"apiGroups": [""], "resources": ["pods"], "verbs": READ},
]


class Operators:
    """This module's operator, restarted only when a test asks for other settings."""

    def __init__(self, cluster: Cluster, cache: Path) -> None:
        self.cluster = cluster
        self.cache = cache
        self.current: OperatorProcess | None = None

    def use(self, **settings: str) -> OperatorProcess:
        env = {"KUBEMART_CHART_CACHE_DIR": str(self.cache), **settings}
        if self.current is not None and self.current.extra_env == env and self.current.healthy():
            return self.current
        self.stop()
        self.current = OperatorProcess(self.cluster, extra_env=env)
        self.current.start()
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="module")
def operators(
    cluster: Cluster, operator_session: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operators]:
    # Two operators would fight over the same AppInstalls: the shared one rests meanwhile.
    operator_session.stop()
    ops = Operators(cluster, tmp_path_factory.mktemp("charts"))
    try:
        yield ops
    finally:
        ops.stop()
        operator_session.start()


@pytest.fixture(scope="module")
def source(objects: Objects, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A catalog with `hello`, which can also render a ClusterRole or a ConfigMap in another namespace."""
    repo = ChartRepo(tmp_path_factory.mktemp("repo"))
    repo.add_chart("hello", "0.1.0", extra_templates=FORBIDDEN_TEMPLATES)
    name = f"t-ten-{uuid.uuid4().hex[:6]}"
    create_source(objects, name, repo.url)
    yield name
    objects.delete("marketsources", name)
    repo.close()


@pytest.fixture
def other_namespace(k8s: client.ApiClient, namespace: str) -> Iterator[str]:
    name = f"{namespace}-other"[:63]
    core = client.CoreV1Api(k8s)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def synced(objects: Objects, source: str) -> None:
    wait_for(lambda: ready(objects.get("marketsources", source)), timeout=60, what="source Ready")


def service_account(k8s: client.ApiClient, namespace: str, name: str) -> None:
    client.CoreV1Api(k8s).create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )


def grant(
    k8s: client.ApiClient, namespace: str, account: str, *, account_namespace: str | None = None
) -> None:
    """A Role in `namespace` allowing what the hello chart needs, bound to the account."""
    rbac = client.RbacAuthorizationV1Api(k8s)
    name = f"hello-{account}"
    if not _exists(lambda: rbac.read_namespaced_role(name, namespace)):
        rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": HELLO_RULES})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": account_namespace or namespace}
            ],
        },
    )


def revoke(k8s: client.ApiClient, namespace: str, account: str) -> None:
    client.RbacAuthorizationV1Api(k8s).delete_namespaced_role_binding(f"hello-{account}", namespace)


def _exists(read: Any) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def refused(objects: Objects, namespace: str, name: str, reason: str, *, stalled: bool) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = objects.get("appinstalls", name, namespace)
        c = condition(obj)
        if not (c and c["status"] == "False" and c["reason"] == reason):
            return None
        return c

    cond = wait_for(check, timeout=90, what=f"Ready=False {reason}")
    obj = objects.get("appinstalls", name, namespace)
    assert (condition(obj, "Stalled") is not None) == stalled
    wait_for(
        lambda: any(t == "Warning" and r == reason for t, r, _ in objects.events_for(name, namespace)),
        timeout=30,
        what=f"Warning Event {reason}",
    )
    return cond


def helm_runs(op: OperatorProcess, verb: str, release: str, namespace: str, since: int = 0) -> list[str]:
    return re.findall(
        rf"running command: \S*helm {verb} {release} .*--namespace {namespace}\b.*", op.log(since)
    )


def as_account(namespace: str, account: str) -> str:
    return f"--kube-as-user system:serviceaccount:{namespace}:{account}"


def helm_releases(k8s: client.ApiClient, namespace: str) -> list[str]:
    secrets = client.CoreV1Api(k8s).list_namespaced_secret(namespace, label_selector="owner=helm").items
    return [s.metadata.name for s in secrets]


# --- the adapter, straight against the apiserver ---------------------------------------------------


def test_kube_client_acts_as_the_account_only_when_asked(
    cluster: Cluster, k8s: client.ApiClient, namespace: str
) -> None:
    service_account(k8s, namespace, "reader")
    account = Account(namespace, "reader")

    async def scenario() -> tuple[KubeError | None, bool, bool, bool]:
        kube = Kube(AsyncClient(config=KubeConfig.from_file(str(cluster.kubeconfig))))
        try:
            assert await kube.get(ConfigMap, "absent", namespace) is None  # the operator may read
            denied = None
            try:
                await kube.acting_as(account).get(ConfigMap, "absent", namespace)
            except KubeError as err:
                denied = err
            may_before = await kube.may(account, verb="create", resource="secrets", namespace=namespace)
            grant(k8s, namespace, "reader")
            may_after = await kube.may(account, verb="create", resource="secrets", namespace=namespace)
            # The view's identity does not leak into the operator's own requests.
            as_operator = await kube.get(ConfigMap, "absent", namespace) is None
            return denied, may_before, may_after, as_operator
        finally:
            await kube.close()

    denied, may_before, may_after, as_operator = asyncio.run(scenario())
    assert denied is not None
    assert denied.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in denied.message
    assert (may_before, may_after, as_operator) == (False, True, True)


# --- with the default settings -----------------------------------------------------------------------


def test_app_is_installed_corrected_and_uninstalled_as_its_service_account(
    operators: Operators, objects: Objects, k8s: client.ApiClient, source: str, namespace: str
) -> None:
    op = operators.use()
    synced(objects, source)
    service_account(k8s, namespace, "deployer")
    grant(k8s, namespace, "deployer")
    since = op.log_size()
    install(objects, namespace, "app", source=source, app="hello", serviceAccountName="deployer")
    wait_for(lambda: running(objects, namespace, "app"), timeout=120, what="Running")
    runs = helm_runs(op, "upgrade", "app", namespace, since)
    assert runs
    assert all(as_account(namespace, "deployer") in r for r in runs), runs

    # Without the account's RoleBinding the operator cannot correct drift: it does not use its own rights.
    core = client.CoreV1Api(k8s)
    revoke(k8s, namespace, "deployer")
    core.patch_namespaced_config_map("app-config", namespace, {"data": {"message": "changed by hand"}})
    request_reconcile(objects, "appinstalls", "app", namespace)
    failures = wait_for(
        lambda: [m for t, r, m in objects.events_for("app", namespace) if r == "DriftCorrectionFailed"],
        timeout=60,
        what="DriftCorrectionFailed Event",
    )
    assert f"system:serviceaccount:{namespace}:deployer" in failures[0]
    assert "forbidden" in failures[0]
    message = core.read_namespaced_config_map("app-config", namespace).data["message"]
    assert message == "changed by hand"

    # Given back its rights, the account corrects it.
    grant(k8s, namespace, "deployer")
    request_reconcile(objects, "appinstalls", "app", namespace)
    wait_for(
        lambda: core.read_namespaced_config_map("app-config", namespace).data["message"] == "hello",
        timeout=60,
        what="drift corrected",
    )

    since = op.log_size()
    objects.delete("appinstalls", "app", namespace)
    wait_for(lambda: objects.get("appinstalls", "app", namespace) is None, timeout=60, what="uninstalled")
    uninstalls = re.findall(rf"running command: \S*helm uninstall app .*{namespace}.*", op.log(since))
    assert uninstalls
    assert as_account(namespace, "deployer") in uninstalls[0]
    assert helm_releases(k8s, namespace) == []


@pytest.mark.parametrize("where", ["cluster-scoped", "another namespace"])
def test_chart_object_the_account_may_not_create_is_refused_and_nothing_is_created(
    operators: Operators,
    objects: Objects,
    k8s: client.ApiClient,
    source: str,
    namespace: str,
    other_namespace: str,
    where: str,
) -> None:
    operators.use()
    synced(objects, source)
    service_account(k8s, namespace, "deployer")
    grant(k8s, namespace, "deployer")
    if where == "cluster-scoped":
        values: dict[str, Any] = {"clusterRole": True}
        named = f'ClusterRole "app-{namespace}"'
    else:
        values = {"otherNamespace": other_namespace}
        named = 'ConfigMap "app-elsewhere"'
    install(
        objects, namespace, "app", source=source, app="hello", serviceAccountName="deployer", values=values
    )
    cond = refused(objects, namespace, "app", "Forbidden", stalled=True)
    assert named in cond["message"], cond["message"]
    assert f"ServiceAccount {namespace}/deployer may not do this" in cond["message"]
    assert objects.get("appinstalls", "app", namespace)["status"]["phase"] == "Failed"  # type: ignore[index]

    core, rbac = client.CoreV1Api(k8s), client.RbacAuthorizationV1Api(k8s)
    assert not _exists(lambda: rbac.read_cluster_role(f"app-{namespace}"))
    assert not _exists(lambda: core.read_namespaced_config_map("app-elsewhere", other_namespace))
    assert not _exists(lambda: core.read_namespaced_config_map("app-config", namespace))
    assert not _exists(lambda: client.AppsV1Api(k8s).read_namespaced_deployment("app", namespace))
    assert helm_releases(k8s, namespace) == []


def test_missing_service_account_is_reported_until_it_exists(
    operators: Operators, objects: Objects, k8s: client.ApiClient, source: str, namespace: str
) -> None:
    operators.use()
    synced(objects, source)
    install(objects, namespace, "app", source=source, app="hello", serviceAccountName="later")
    cond = refused(objects, namespace, "app", "ServiceAccountNotFound", stalled=False)
    assert "later" in cond["message"]
    assert namespace in cond["message"]
    service_account(k8s, namespace, "later")
    grant(k8s, namespace, "later")
    wait_for(lambda: running(objects, namespace, "app"), timeout=120, what="Running once the account exists")


def test_other_target_namespace_is_refused_without_an_account(
    operators: Operators,
    objects: Objects,
    k8s: client.ApiClient,
    source: str,
    namespace: str,
    other_namespace: str,
) -> None:
    op = operators.use()
    synced(objects, source)
    since = op.log_size()
    install(objects, namespace, "app", source=source, app="hello", targetNamespace=other_namespace)
    cond = refused(objects, namespace, "app", "TargetNamespaceNotAllowed", stalled=True)
    for part in (namespace, other_namespace, "KUBEMART_ALLOW_CROSS_NAMESPACE"):
        assert part in cond["message"]
    assert helm_runs(op, "upgrade", "app", other_namespace, since) == []
    assert helm_releases(k8s, other_namespace) == []
    # Deleting it leaves the other namespace alone too.
    objects.delete("appinstalls", "app", namespace)
    wait_for(lambda: objects.get("appinstalls", "app", namespace) is None, timeout=60, what="deleted")
    assert not re.search(rf"helm uninstall app .*{other_namespace}", op.log(since))


def test_other_target_namespace_is_allowed_by_the_accounts_own_permissions(
    operators: Operators,
    objects: Objects,
    k8s: client.ApiClient,
    source: str,
    namespace: str,
    other_namespace: str,
) -> None:
    operators.use()
    synced(objects, source)
    service_account(k8s, namespace, "deployer")
    grant(k8s, namespace, "deployer")
    install(
        objects,
        namespace,
        "app",
        source=source,
        app="hello",
        serviceAccountName="deployer",
        targetNamespace=other_namespace,
    )
    cond = refused(objects, namespace, "app", "TargetNamespaceNotAllowed", stalled=True)
    assert f"ServiceAccount {namespace}/deployer" in cond["message"]
    # An admin lets the account into the other namespace; a retry request picks it up.
    grant(k8s, other_namespace, "deployer", account_namespace=namespace)
    request_reconcile(objects, "appinstalls", "app", namespace)
    wait_for(lambda: running(objects, namespace, "app"), timeout=120, what="Running in the other namespace")
    assert _exists(lambda: client.AppsV1Api(k8s).read_namespaced_deployment("app", other_namespace))


# --- with other settings ---------------------------------------------------------------------------------


def test_other_target_namespace_is_allowed_by_the_setting(
    operators: Operators,
    objects: Objects,
    k8s: client.ApiClient,
    source: str,
    namespace: str,
    other_namespace: str,
) -> None:
    operators.use(KUBEMART_ALLOW_CROSS_NAMESPACE="true")
    synced(objects, source)
    install(objects, namespace, "app", source=source, app="hello", targetNamespace=other_namespace)
    wait_for(lambda: running(objects, namespace, "app"), timeout=120, what="Running in the other namespace")
    assert _exists(lambda: client.AppsV1Api(k8s).read_namespaced_deployment("app", other_namespace))
    objects.delete("appinstalls", "app", namespace)
    wait_for(lambda: objects.get("appinstalls", "app", namespace) is None, timeout=60, what="uninstalled")
    assert helm_releases(k8s, other_namespace) == []


def test_required_account_is_refused_until_the_default_names_one(
    operators: Operators, objects: Objects, k8s: client.ApiClient, source: str, namespace: str
) -> None:
    operators.use(KUBEMART_REQUIRE_SERVICE_ACCOUNT="true")
    synced(objects, source)
    install(objects, namespace, "app", source=source, app="hello")
    cond = refused(objects, namespace, "app", "ServiceAccountRequired", stalled=True)
    assert "spec.serviceAccountName" in cond["message"]
    assert helm_releases(k8s, namespace) == []

    service_account(k8s, namespace, "tenant")
    grant(k8s, namespace, "tenant")
    op = operators.use(KUBEMART_REQUIRE_SERVICE_ACCOUNT="true", KUBEMART_DEFAULT_SERVICE_ACCOUNT="tenant")
    wait_for(lambda: running(objects, namespace, "app"), timeout=120, what="Running as the default account")
    runs = helm_runs(op, "upgrade", "app", namespace)
    assert runs
    assert as_account(namespace, "tenant") in runs[0]
