"""The generated CRDs as the API server enforces them: validation, pruning, CEL rules, names, columns."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from support.cluster import Cluster
from support.kube import Objects


def test_invalid_appinstall_is_rejected_with_the_field_named(objects: Objects, namespace: str) -> None:
    with pytest.raises(ApiException) as exc:
        objects.create(
            "appinstalls",
            {"kind": "AppInstall", "metadata": {"name": "x"}, "spec": {"source": "s"}},
            namespace,
        )
    assert exc.value.status == 422
    assert "spec.app" in exc.value.body


def test_unknown_fields_are_pruned_but_values_keep_theirs(objects: Objects, namespace: str) -> None:
    objects.create(
        "appinstalls",
        {
            "kind": "AppInstall",
            "metadata": {"name": "pruned"},
            "spec": {"source": "s", "app": "a", "colour": "blue", "values": {"any": {"nested": [1, "two"]}}},
        },
        namespace,
    )
    spec = objects.get("appinstalls", "pruned", namespace)["spec"]  # type: ignore[index]
    assert "colour" not in spec
    assert spec["values"] == {"any": {"nested": [1, "two"]}}
    assert spec["timeout"] == "5m", "defaults come from the schema"
    assert spec["driftDetection"] == {"mode": "enabled"}


def test_release_name_cannot_change_after_creation(objects: Objects, namespace: str) -> None:
    objects.create(
        "appinstalls",
        {
            "kind": "AppInstall",
            "metadata": {"name": "fixed"},
            "spec": {"source": "s", "app": "a", "releaseName": "one", "suspend": True},
        },
        namespace,
    )
    with pytest.raises(ApiException) as exc:
        objects.patch("appinstalls", "fixed", {"spec": {"releaseName": "two"}}, namespace)
    assert exc.value.status == 422
    assert "releaseName cannot be changed" in exc.value.body


def test_bad_durations_and_versions_are_rejected(objects: Objects, namespace: str) -> None:
    for spec, field in (({"timeout": "soon"}, "spec.timeout"), ({"version": "1.0; rm -rf"}, "spec.version")):
        with pytest.raises(ApiException) as exc:
            objects.create(
                "appinstalls",
                {
                    "kind": "AppInstall",
                    "metadata": {"name": "bad"},
                    "spec": {"source": "s", "app": "a", **spec},
                },
                namespace,
            )
        assert field in exc.value.body


def test_category_short_names_and_columns(cluster: Cluster, objects: Objects, namespace: str) -> None:
    objects.create(
        "appinstalls",
        {
            "kind": "AppInstall",
            "metadata": {"name": "listed"},
            "spec": {"source": "s", "app": "notes", "suspend": True},
        },
        namespace,
    )
    out = cluster.run("kubectl", "get", "kubemart", "-A").stdout
    assert "appinstall.kubemart.io/listed" in out
    table = cluster.run("kubectl", "get", "ai", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "APP", "VERSION", "PHASE", "READY", "AGE"]
    assert table[1].split()[:2] == ["listed", "notes"]
    for short in ("msrc", "mapp", "pay"):
        assert cluster.run("kubectl", "get", short, "-A", check=False).returncode == 0
