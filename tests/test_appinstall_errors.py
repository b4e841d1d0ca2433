"""Bad input gets a clear answer and loses nothing: a reason, a message, an Event, backoff; fixing recovers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from support.apps import install, running
from support.kube import Objects, condition
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for

Fix = Callable[[Objects, client.ApiClient, str, str, ChartRepo], None]


def patch_spec(**spec: Any) -> Fix:
    def fix(objects: Objects, k8s: client.ApiClient, namespace: str, catalog: str, repo: ChartRepo) -> None:
        objects.patch(
            "appinstalls",
            "app",
            {"spec": {k: (catalog if v == "<catalog>" else v) for k, v in spec.items()}},
            namespace,
        )

    return fix


def create_configmap(
    objects: Objects, k8s: client.ApiClient, namespace: str, catalog: str, repo: ChartRepo
) -> None:
    client.CoreV1Api(k8s).create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="missing"), data={"values.yaml": "message: hi\n"}
        ),
    )


def create_target_namespace(
    objects: Objects, k8s: client.ApiClient, namespace: str, catalog: str, repo: ChartRepo
) -> None:
    client.CoreV1Api(k8s).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=f"{namespace}-target"))
    )


def repair_repository(
    objects: Objects, k8s: client.ApiClient, namespace: str, catalog: str, repo: ChartRepo
) -> None:
    repo.fail_chart_downloads(None)


CASES = [
    pytest.param(
        {"source": "no-such-source"},
        "SourceNotFound",
        False,
        patch_spec(source="<catalog>"),
        id="unknown source",
    ),
    pytest.param({"app": "no-such-app"}, "AppNotFound", True, patch_spec(app="hello"), id="unknown app"),
    pytest.param(
        {"version": ">=9"}, "NoMatchingVersion", True, patch_spec(version="0.2.0"), id="no matching version"
    ),
    pytest.param(
        {"version": "1.x | 2.x"}, "InvalidVersion", True, patch_spec(version="0.1.0"), id="unparseable range"
    ),
    pytest.param(
        {"values": {"replicaCount": "many"}},
        "ValuesSchemaViolation",
        True,
        patch_spec(values={"replicaCount": 1}),
        id="values rejected by schema",
    ),
    pytest.param(
        {"valuesFrom": [{"kind": "ConfigMap", "name": "missing"}]},
        "ValuesSourceNotFound",
        False,
        create_configmap,
        id="missing configmap",
    ),
    pytest.param(
        {"targetNamespace": "<ns>-target"},
        "TargetNamespaceNotFound",
        False,
        create_target_namespace,
        id="target namespace missing",
    ),
    pytest.param(
        {"_break_charts": True}, "ChartDownloadFailed", False, repair_repository, id="chart download fails"
    ),
    pytest.param(
        {"timeout": "3s", "values": {"nodeSelector": {"no-such-label": "x"}}},
        "ReleaseNotReady",
        True,
        patch_spec(values={"nodeSelector": None}, timeout="2m"),
        id="release not ready within timeout",
    ),
]


@pytest.mark.parametrize(("spec", "reason", "stalled", "fix"), CASES)
def test_bad_input_is_reported_and_fixing_it_recovers(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    catalog: str,
    chart_repo: ChartRepo,
    namespace: str,
    spec: dict[str, Any],
    reason: str,
    stalled: bool,
    fix: Fix,
) -> None:
    spec = dict(spec)
    if spec.pop("_break_charts", False):
        chart_repo.fail_chart_downloads(503)
    if spec.get("targetNamespace") == "<ns>-target":
        spec["targetNamespace"] = f"{namespace}-target"
    log_start = operator.log_size()
    install(objects, namespace, "app", **({"source": catalog, "app": "hello"} | spec))

    def failed() -> dict[str, Any] | None:
        c = condition(objects.get("appinstalls", "app", namespace))
        return c if c and c["status"] == "False" and c["reason"] == reason else None

    cond = wait_for(failed, timeout=90, what=f"Ready=False reason {reason}")
    assert len(cond["message"]) > 30, "the message says what is wrong and what to do"
    assert (condition(objects.get("appinstalls", "app", namespace), "Stalled") is not None) == stalled
    wait_for(
        lambda: any(r == reason and t == "Warning" for t, r, _ in objects.events_for("app", namespace)),
        timeout=30,
        what=f"a Warning Event {reason}",
    )
    log = operator.log(log_start)
    assert "Traceback" not in log
    helm_runs = re.findall(rf"running command: \S*helm upgrade app .* --namespace {namespace}\b", log)
    assert len(helm_runs) <= 1, f"no helm storm: {helm_runs}"

    fix(objects, k8s, namespace, catalog, chart_repo)
    wait_for(lambda: running(objects, namespace, "app"), timeout=180, what="Running after the fix")
    if spec.get("targetNamespace"):
        client.CoreV1Api(k8s).delete_namespace(spec["targetNamespace"])
