"""Whether a release's workloads are ready (pure): Deployments, StatefulSets, DaemonSets, Jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubemart.domain.drift import SCALABLE_KINDS, WORKLOAD_KINDS, ObjectRef


def workload_health(obj: Mapping[str, Any]) -> str | None:
    """None when a workload is ready; otherwise why not, in a few words. Non-workloads are ready."""
    kind = obj.get("kind")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    name = (obj.get("metadata") or {}).get("name")
    if (
        kind in ("Deployment", "StatefulSet", "DaemonSet")
        and generation is not None
        and observed != generation
    ):
        return f"{kind} {name} has not observed its latest spec yet"
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        ready = status.get("availableReplicas") or 0
        updated = status.get("updatedReplicas") or 0
        if ready < want or updated < want:
            return f"Deployment {name} has {ready}/{want} replicas available"
        return None
    if kind == "StatefulSet":
        want = spec.get("replicas", 1)
        ready = status.get("readyReplicas") or 0
        if ready < want or (
            status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision")
        ):
            return f"StatefulSet {name} has {ready}/{want} replicas ready"
        return None
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled") or 0
        ready = status.get("numberReady") or 0
        if ready < want:
            return f"DaemonSet {name} has {ready}/{want} pods ready"
        return None
    if kind == "Job":
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        if conditions.get("Failed") == "True":
            return f"Job {name} failed"
        return None  # a running or finished Job is not a health problem
    return None


def workloads(
    lives: Mapping[ObjectRef, Mapping[str, Any] | None], *, stopped: bool
) -> tuple[list[str], dict[str, int], bool]:
    """(why workloads are not ready, replicas of scalable ones by `Kind/name`, whether every scalable
    one has no replica left) of a release's live objects. A stopped app's health is not judged."""
    unhealthy: list[str] = []
    replicas: dict[str, int] = {}
    scaled_to_zero = True
    for ref, obj in lives.items():
        if obj is None or ref.kind not in WORKLOAD_KINDS:
            continue
        if ref.kind in SCALABLE_KINDS:
            replicas[f"{ref.kind}/{ref.name}"] = int((obj.get("spec") or {}).get("replicas", 1))
            if (obj.get("status") or {}).get("replicas"):
                scaled_to_zero = False
        if not stopped and (problem := workload_health(obj)):
            unhealthy.append(problem)
    return unhealthy, replicas, scaled_to_zero
