"""The real-chart corpus (../shared/realcharts): eight unmodified upstream charts, their release
names and the values they need on the test cluster. Looked for in `shared/realcharts` next to the
project root or any directory above it (a git worktree sits deeper than the main checkout), or at
$KUBEMART_REALCHARTS."""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .cluster import ROOT


def corpus_dir() -> Path | None:
    given = os.environ.get("KUBEMART_REALCHARTS")
    candidates = [Path(given)] if given else [p / "shared" / "realcharts" for p in (ROOT, *ROOT.parents)]
    return next((c for c in candidates if (c / "charts.yaml").is_file()), None)


@dataclass(frozen=True)
class RealChart:
    app: str
    release: str
    archive: Path
    values: dict[str, Any] = field(default_factory=dict)
    olares: bool = False

    def olares_manifest(self) -> dict[str, Any]:
        """The chart's OlaresManifest.yaml, parsed with the operator's bounded YAML reader."""
        from kubemart.domain import safe_yaml

        with tarfile.open(self.archive) as tar:
            member = tar.extractfile(f"{self.app}/OlaresManifest.yaml")
            assert member is not None
            return dict(safe_yaml.load(member.read()))


def real_charts() -> list[RealChart]:
    """The corpus, or [] when it is not on this machine."""
    root = corpus_dir()
    if root is None:
        return []
    out = []
    for entry in yaml.safe_load((root / "charts.yaml").read_text())["charts"]:
        archive = next((root / "repo").glob(f"{entry['app']}-[0-9]*.tgz"))
        out.append(
            RealChart(
                app=entry["app"],
                release=entry["release"],
                archive=archive,
                values=dict(entry.get("values") or {}),
                olares=bool(entry.get("olares")),
            )
        )
    return out


# --- what the kwok cluster lacks (README of the corpus) ------------------------------------------

POOL_CLASS = "kubemart-test-pool"


def provide_capacity(k8s: Any, volumes: int, run: str) -> list[str]:
    """Ephemeral storage on every node, and `volumes` PersistentVolumes behind a default
    WaitForFirstConsumer StorageClass, so that Bitnami pods schedule and their claims bind, with raw
    helm as with the operator. Returns the PersistentVolumes' names (to delete afterwards)."""
    from kubernetes import client

    core, storage = client.CoreV1Api(k8s), client.StorageV1Api(k8s)
    for node in core.list_node().items:
        if "ephemeral-storage" not in (node.status.allocatable or {}):
            core.patch_node_status(
                node.metadata.name,
                {
                    "status": {
                        "capacity": {"ephemeral-storage": "1Ti"},
                        "allocatable": {"ephemeral-storage": "1Ti"},
                    }
                },
            )
    if not [c for c in storage.list_storage_class().items if c.metadata.name == POOL_CLASS]:
        storage.create_storage_class(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": POOL_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "kubernetes.io/no-provisioner",
                "volumeBindingMode": "WaitForFirstConsumer",
            }
        )
    names = [f"{POOL_CLASS}-{run}-{i}" for i in range(volumes)]
    for name in names:
        core.create_persistent_volume(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"kubemart.io/test-pool": run}},
                "spec": {
                    "capacity": {"storage": "100Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": POOL_CLASS,
                    "hostPath": {"path": f"/tmp/{name}"},
                },
            }
        )
    return names


def remove_capacity(k8s: Any, volumes: list[str]) -> None:
    """The PersistentVolumes and the StorageClass of provide_capacity (the nodes keep their storage)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core, storage = client.CoreV1Api(k8s), client.StorageV1Api(k8s)
    for name in volumes:
        try:
            core.delete_persistent_volume(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    try:
        storage.delete_storage_class(POOL_CLASS)
    except ApiException as exc:
        if exc.status != 404:
            raise
