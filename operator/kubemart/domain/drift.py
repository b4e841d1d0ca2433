"""Drift: where the live objects of a release differ from what its manifest sets (pure).

Only the fields the manifest sets are compared, so what the API server defaults and what other
controllers own (an HPA's replicas, a Service's clusterIP, statuses) is never drift. Values that
mean the same but are written differently (quantities such as 0.5 and 500m, stringData and data)
compare equal.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
SCALABLE_KINDS = ("Deployment", "StatefulSet")
_IGNORED_METADATA = {
    "namespace",
    "name",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "uid",
    "managedFields",
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_SUFFIX = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


@dataclass(frozen=True, order=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass(frozen=True)
class Drift:
    ref: ObjectRef
    missing: bool
    fields: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        if self.missing:
            return f"{self.ref} was deleted"
        return f"{self.ref} changed ({', '.join(self.fields[:4])}{', ...' if len(self.fields) > 4 else ''})"


def ref_of(obj: Mapping[str, Any], *, default_namespace: str, namespaced: bool) -> ObjectRef:
    meta = obj.get("metadata") or {}
    ns = (meta.get("namespace") or default_namespace) if namespaced else None
    return ObjectRef(str(obj.get("apiVersion", "")), str(obj.get("kind", "")), ns, str(meta.get("name", "")))


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity's value, or None when `value` is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value.strip())
    if not m:
        return None
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return None
    suffix = m.group(2)
    if suffix and suffix[0] in "eE":
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _SUFFIX[suffix]


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, str) and isinstance(have, str) is False and str(have) == want:
        return True  # a number the manifest wrote as a string
    a, b = quantity(want), quantity(have)
    return a is not None and a == b


def diff_fields(want: Any, have: Any, path: str = "") -> list[str]:
    """Paths (a.b[0].c) where `have` does not hold what `want` sets."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [] if _empty(want) and have is None else [path or "."]
        out: list[str] = []
        for key, value in want.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in have:
                if not _empty(value):
                    out.append(sub)
                continue
            out += diff_fields(value, have[key], sub)
        return out
    if isinstance(want, list):
        if not isinstance(have, list):
            return [] if _empty(want) and have is None else [path]
        if len(want) != len(have):
            return [path]
        out = []
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            out += diff_fields(w, h, f"{path}[{i}]")
        return out
    if _empty(want) and _empty(have):
        return []
    return [] if _same_scalar(want, have) else [path]


def desired_state(obj: Mapping[str, Any], *, stopped: bool) -> dict[str, Any]:
    """What the manifest sets, as it compares with a live object."""
    out = {k: v for k, v in obj.items() if k not in ("status",)}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _IGNORED_METADATA}
    out["metadata"] = meta
    if obj.get("kind") == "Secret" and obj.get("stringData"):
        # The API server stores stringData as base64 in data.
        data = dict(out.get("data") or {})
        for k, v in (obj.get("stringData") or {}).items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        out["data"] = data
        out.pop("stringData")
    if stopped and obj.get("kind") in SCALABLE_KINDS:
        out["spec"] = {**(out.get("spec") or {}), "replicas": 0}
    return out


def find_drift(
    manifest: Iterable[Mapping[str, Any]],
    live: Callable[[ObjectRef], Mapping[str, Any] | None],
    *,
    default_namespace: str,
    namespaced: Callable[[str, str], bool],
    stopped: bool = False,
) -> list[Drift]:
    """Every manifest object that is missing or differs from what it sets. `live` looks objects up."""
    out = []
    for obj in manifest:
        ref = ref_of(
            obj, default_namespace=default_namespace, namespaced=namespaced(obj["apiVersion"], obj["kind"])
        )
        have = live(ref)
        if have is None:
            out.append(Drift(ref, missing=True))
            continue
        fields = diff_fields(
            desired_state(obj, stopped=stopped), {k: v for k, v in have.items() if k != "status"}
        )
        if fields:
            out.append(Drift(ref, missing=False, fields=tuple(fields)))
    return out


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
