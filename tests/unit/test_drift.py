"""domain.drift and domain.desired: what counts as drift, and what never does.

The false-positive cases are the ones real charts produced with the old field diff (issue #10,
point 5): bitnami postgresql and redis, ingress-nginx, kube-prometheus-stack, an Olares app.
"""

from __future__ import annotations

import base64
import copy
from decimal import Decimal
from typing import Any

import pytest

from kubemart.domain.desired import desired_object, for_apply, well_formed, without_nulls
from kubemart.domain.drift import (
    MAX_PATHS,
    Drift,
    ObjectRef,
    compare_dry_run,
    compare_fields,
    diff_fields,
    quantity,
    ref_of,
    replicas_target,
)


def obj(kind: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    api = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1"}.get(kind, "v1")
    out: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": {"name": "x", **meta}}
    if spec is not None:
        out["spec"] = spec
    return out


def pod_spec(**fields: Any) -> dict[str, Any]:
    return {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], **fields}}}


# --- compare_dry_run: the live object against the API server's dry-run answer ----------------------

LIVE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "apps",
        "uid": "u1",
        "resourceVersion": "10",
        "generation": 3,
        "labels": {"app": "web", "team": "a"},
        "annotations": {"meta.helm.sh/release-name": "web", "deployment.kubernetes.io/revision": "3"},
        "managedFields": [{"manager": "helm"}],
    },
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "web:1"}]}}},
    "status": {"replicas": 2, "readyReplicas": 2},
}


def changed(**edits: Any) -> dict[str, Any]:
    out = copy.deepcopy(LIVE)
    for path, value in edits.items():
        target = out
        *parents, last = path.split("__")
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[last] = value
    return out


@pytest.mark.parametrize(
    ("dry_run", "expected"),
    [
        pytest.param(copy.deepcopy(LIVE), (), id="identical"),
        pytest.param(
            changed(metadata__resourceVersion="11", metadata__generation=4, metadata__managedFields=[]),
            (),
            id="server-managed metadata is not drift",
        ),
        pytest.param(changed(status={"replicas": 0}), (), id="status is not drift"),
        pytest.param(
            changed(metadata__labels={"app": "web"}),
            (),
            id="a label someone else added (kept by the apply) is not drift",
        ),
        pytest.param(
            changed(metadata__labels={"app": "web", "team": "a", "tier": "front"}),
            ("metadata.labels.tier",),
            id="a label the manifest adds back",
        ),
        pytest.param(
            changed(
                metadata__annotations={
                    **LIVE["metadata"]["annotations"],
                    "meta.helm.sh/release-name": "other",
                }
            ),
            ('metadata.annotations["meta.helm.sh/release-name"]',),
            id="an annotation the manifest changes back",
        ),
        pytest.param(changed(spec__replicas=3), ("spec.replicas",), id="replicas"),
        pytest.param(
            changed(spec__template__spec__containers__0__image="web:2"),
            ("spec.template.spec.containers[0].image",),
            id="container image",
        ),
        pytest.param(
            changed(spec__template__spec__containers=[{"name": "c", "image": "web:1"}, {"name": "d"}]),
            ("spec.template.spec.containers",),
            id="a list of another length",
        ),
        pytest.param(changed(spec__paused=True), ("spec.paused",), id="a field the apply would set"),
        pytest.param(changed(spec__replicas="2"), ("spec.replicas",), id="same text, other type"),
    ],
)
def test_compare_dry_run(dry_run: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert compare_dry_run(LIVE, dry_run) == expected


def test_a_field_the_apply_would_remove_is_drift() -> None:
    dry_run = copy.deepcopy(LIVE)
    del dry_run["spec"]["template"]["spec"]["containers"][0]["image"]
    assert compare_dry_run(LIVE, dry_run) == ("spec.template.spec.containers[0].image",)


def test_secret_values_never_appear_in_paths() -> None:
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "aGk="}}
    dry = {**live, "data": {"password": "c2VjcmV0"}}
    assert compare_dry_run(live, dry) == ("data.password",)  # the key, never the values


def test_hpa_dry_run_with_a_repeated_and_an_empty_metric_is_not_drift() -> None:
    # kubernetes#118293, as Flux's normalize.DryRunUnstructured handles it.
    metric = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}
    live = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "spec": {"metrics": [metric]}}
    dry = {**live, "spec": {"metrics": [metric, metric, {}]}}
    assert compare_dry_run(live, dry) == ()


def test_paths_are_bounded() -> None:
    live = {"kind": "ConfigMap", "data": {f"k{i}": "a" for i in range(500)}}
    dry = {"kind": "ConfigMap", "data": {f"k{i}": "b" for i in range(500)}}
    assert len(compare_dry_run(live, dry)) == MAX_PATHS


# --- compare_fields, the fallback: zero values and nulls are not drift (issue #10 point 5) --------


@pytest.mark.parametrize(
    ("manifest", "live"),
    [
        pytest.param(
            obj("Service", {"clusterIP": "None"}, annotations=None),
            obj("Service", {"clusterIP": "None"}, annotations={"meta.helm.sh/release-name": "pg"}),
            id="bitnami postgresql headless Service: annotations: null",
        ),
        pytest.param(
            obj("StatefulSet", pod_spec(hostNetwork=False, hostIPC=False)),
            obj("StatefulSet", pod_spec()),
            id="bitnami postgresql StatefulSet: hostNetwork and hostIPC false",
        ),
        pytest.param(
            obj("Deployment", {"minReadySeconds": 0, **pod_spec()}),
            obj("Deployment", pod_spec()),
            id="ingress-nginx controller: minReadySeconds 0",
        ),
        pytest.param(
            obj("Service", {"publishNotReadyAddresses": False}),
            obj("Service", {}),
            id="kube-prometheus-stack prometheus Service: publishNotReadyAddresses false",
        ),
        pytest.param(
            obj(
                "DaemonSet",
                {
                    "template": {
                        "spec": {
                            "hostIPC": False,
                            "containers": [
                                {
                                    "name": "c",
                                    "livenessProbe": {"initialDelaySeconds": 0, "httpGet": {"port": 9100}},
                                }
                            ],
                        }
                    }
                },
            ),
            obj(
                "DaemonSet",
                {
                    "template": {
                        "spec": {"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": 9100}}}]}
                    }
                },
            ),
            id="node-exporter: probe initialDelaySeconds 0",
        ),
        pytest.param(
            obj("Service", {"ports": [{"port": 80}]}, annotations={}),
            obj("Service", {"ports": [{"port": 80, "protocol": "TCP"}]}),
            id="empty annotations, protocol defaulted",
        ),
        pytest.param(
            obj(
                "Deployment",
                {"template": {"spec": {"securityContext": {"runAsNonRoot": False, "seLinuxOptions": {}}}}},
            ),
            obj("Deployment", {"template": {"spec": {}}}),
            id="a mapping holding only zero values",
        ),
        pytest.param(
            obj(
                "Deployment",
                {"template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "0.5"}}}]}}},
            ),
            obj(
                "Deployment",
                {"template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "500m"}}}]}}},
            ),
            id="quantities written differently",
        ),
        pytest.param(
            obj(
                "Deployment", {"template": {"spec": {"containers": [{"ports": [{"containerPort": "8080"}]}]}}}
            ),
            obj("Deployment", {"template": {"spec": {"containers": [{"ports": [{"containerPort": 8080}]}]}}}),
            id="a number the manifest quotes",
        ),
        pytest.param(
            {**obj("Secret"), "stringData": {"password": "s3cret"}},
            {**obj("Secret"), "data": {"password": base64.b64encode(b"s3cret").decode()}},
            id="Secret stringData against data",
        ),
    ],
)
def test_compare_fields_false_positives_of_real_charts(
    manifest: dict[str, Any], live: dict[str, Any]
) -> None:
    desired = desired_object(manifest, release="r", release_namespace="apps", namespaced=True)
    live = desired_object(live, release="r", release_namespace="apps", namespaced=True)  # Helm's metadata too
    assert compare_fields(desired, live) == ()


@pytest.mark.parametrize(
    ("want", "have", "expected"),
    [
        pytest.param({"a": 1}, {"a": 2}, ["a"], id="changed"),
        pytest.param({"a": 1}, {}, ["a"], id="a set value removed"),
        pytest.param({"a": True}, {}, ["a"], id="true removed"),
        pytest.param({"a": True}, {"a": False}, ["a"], id="true made false"),
        pytest.param({"a": False}, {"a": True}, ["a"], id="false made true"),
        pytest.param({"a": 0}, {"a": 3}, ["a"], id="zero made three"),
        pytest.param({"a": 1}, {"a": True}, ["a"], id="a number is not a boolean"),
        pytest.param({"a": {"b": 1}}, {"a": {}}, ["a.b"], id="nested"),
        pytest.param({"a": {"b": 1}}, {}, ["a"], id="a mapping with a value removed"),
        pytest.param({"a": [1, 2]}, {"a": [1]}, ["a"], id="list length"),
        pytest.param({"a": [{"b": 1}]}, {"a": [{"b": 2}]}, ["a[0].b"], id="list item"),
        pytest.param({"a": "x"}, {"a": "x", "b": "y"}, [], id="fields the manifest does not set"),
        pytest.param({"a": None}, {"a": {"b": 1}}, [], id="null sets nothing"),
        pytest.param({"a": []}, {}, [], id="an empty list is the absent one"),
        pytest.param({"cpu": "1"}, {"cpu": "1000m"}, [], id="quantity"),
        pytest.param({"cpu": "2"}, {"cpu": "1000m"}, ["cpu"], id="another quantity"),
    ],
)
def test_diff_fields(want: Any, have: Any, expected: list[str]) -> None:
    assert diff_fields(want, have) == expected


def test_compare_fields_finds_real_changes() -> None:
    manifest = obj("Deployment", {"replicas": 2, **pod_spec()}, labels={"app": "web"})
    desired = desired_object(manifest, release="r", release_namespace="apps", namespaced=True)
    live = copy.deepcopy(desired)
    live["spec"]["replicas"] = 5
    live["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "Helm"}
    assert compare_fields(desired, live) == ("metadata.labels.app", "spec.replicas")


# --- desired_object: a manifest object as the configuration to apply ------------------------------


def test_desired_object_normalises_as_flux_does() -> None:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": None, "creationTimestamp": None, "labels": {"app": "web"}},
        "spec": {
            "template": {
                "metadata": {"creationTimestamp": None},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}], "env": None}]},
            }
        },
        "status": {},
    }
    assert desired_object(manifest, release="web", release_namespace="apps", namespaced=True) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "apps",
            "labels": {"app": "web", "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": "apps"},
        },
        "spec": {
            "template": {
                "metadata": {},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
            }
        },
    }
    assert manifest["metadata"]["annotations"] is None, "the manifest itself is left as it was"


def test_desired_object_keeps_an_explicit_namespace_and_drops_it_for_cluster_scoped_kinds() -> None:
    svc = obj("Service", {"ports": [{"port": 9153, "protocol": "UDP"}]}, namespace="kube-system")
    got = desired_object(svc, release="kps", release_namespace="mon", namespaced=True)
    assert got["metadata"]["namespace"] == "kube-system"
    assert got["spec"]["ports"] == [{"port": 9153, "protocol": "UDP"}]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "r", "namespace": "x"},
    }
    assert (
        "namespace"
        not in desired_object(role, release="r", release_namespace="mon", namespaced=False)["metadata"]
    )


def test_desired_secret_string_data_becomes_data() -> None:
    secret = {**obj("Secret"), "data": {"a": "YQ=="}, "stringData": {"b": "bee", "n": 5}}
    got = desired_object(secret, release="r", release_namespace="apps", namespaced=True)
    assert "stringData" not in got
    assert got["data"] == {"a": "YQ==", "b": "YmVl", "n": "NQ=="}


def test_desired_crd_leaves_the_conversion_ca_bundle_to_its_injector() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.org"},
        "spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": "Cg==", "url": "https://x"}}}},
    }
    got = desired_object(crd, release="r", release_namespace="apps", namespaced=False)
    assert got["spec"]["conversion"]["webhook"]["clientConfig"] == {"url": "https://x"}


def test_without_nulls_keeps_list_items() -> None:
    assert without_nulls({"a": None, "b": [None, {"c": None, "d": 1}]}) == {"b": [None, {"d": 1}]}


@pytest.mark.parametrize(
    ("spec", "replicas", "expected"),
    [
        pytest.param({"replicas": 3}, 0, {"replicas": 0}, id="stopped: the chart's count held at zero"),
        pytest.param({}, 0, {}, id="stopped: a count the chart leaves alone stays unowned"),
        pytest.param({"replicas": 3}, None, {"replicas": 3}, id="running"),
    ],
)
def test_for_apply(spec: dict[str, Any], replicas: int | None, expected: dict[str, Any]) -> None:
    assert for_apply(obj("Deployment", spec), replicas=replicas)["spec"] == expected


# --- replicas_target ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "spec", "stopped", "restore", "expected"),
    [
        pytest.param("Deployment", {"replicas": 2}, True, None, 0, id="stopped"),
        pytest.param("StatefulSet", {}, True, None, 0, id="stopped, chart sets none"),
        pytest.param("Deployment", {}, False, {"Deployment/x": 4}, 4, id="resumed: the remembered count"),
        pytest.param(
            "Deployment", {"replicas": 2}, False, {"Deployment/x": 4}, None, id="resumed: the chart's count"
        ),
        pytest.param(
            "Deployment", {}, False, {"Deployment/other": 4}, None, id="resumed: nothing remembered"
        ),
        pytest.param("Deployment", {}, False, None, None, id="running"),
        pytest.param("DaemonSet", {}, True, None, None, id="not scalable"),
    ],
)
def test_replicas_target(
    kind: str, spec: dict[str, Any], stopped: bool, restore: dict[str, int] | None, expected: int | None
) -> None:
    assert replicas_target(obj(kind, spec), stopped=stopped, restore=restore) == expected


# --- small things ---------------------------------------------------------------------------------


def test_ref_and_describe() -> None:
    ref = ref_of(obj("Service"), default_namespace="apps", namespaced=True)
    assert ref == ObjectRef("v1", "Service", "apps", "x")
    cluster = ref_of(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
        default_namespace="a",
        namespaced=False,
    )
    assert str(cluster) == "Namespace n"
    assert Drift(ref, missing=True).describe() == "Service apps/x was deleted"
    assert (
        Drift(ref, missing=False, fields=tuple("abcde")).describe()
        == "Service apps/x changed (a, b, c, d, ...)"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("1Gi", str(2**30)), ("1e3", "1000"), ("2", "2"), (3, "3"), ("x", None), (True, None)],
)
def test_quantity(text: Any, value: str | None) -> None:
    assert quantity(text) == (Decimal(value) if value is not None else None)


# --- what a forged release manifest may hold ------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest_object", "ok"),
    [
        pytest.param(obj("Service"), True, id="a Service"),
        pytest.param(obj("Service", namespace="apps"), True, id="with a namespace"),
        pytest.param(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": ""}}, False, id="empty name"
        ),
        pytest.param({"apiVersion": "v1", "kind": "Service", "metadata": {}}, False, id="no name"),
        pytest.param({"apiVersion": "v1", "kind": "Service", "metadata": ["x"]}, False, id="metadata a list"),
        pytest.param({"apiVersion": "v1", "metadata": {"name": "x"}}, False, id="no kind"),
        pytest.param(
            {"apiVersion": 1, "kind": "Service", "metadata": {"name": "x"}}, False, id="apiVersion a number"
        ),
        pytest.param(obj("Service", namespace=["a"]), False, id="namespace a list"),
    ],
)
def test_well_formed_manifest_objects(manifest_object: dict[str, Any], ok: bool) -> None:
    assert well_formed(manifest_object) is ok
