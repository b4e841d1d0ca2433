"""Drift: where the live objects of a release differ from what its manifest sets (pure).

The question "would applying the manifest change this object?" is answered by the API server
itself: a server-side apply dry-run of the manifest's object (as field manager `kubemart`) returns
the object as it would be, defaults, conversions and other managers' fields included.
`compare_dry_run` then reports where that differs from the live object, as Flux's ssa/jsondiff does:
every field outside `metadata` and `status`, and the labels and annotations the manifest would add
or change (never the ones others added). Values the server writes its own way (`0.5` CPU as
`500m`, `false` fields it omits, a Secret's `stringData`) are the same on both sides, so they are
never drift.

`diff_fields` is the fallback when the API server refuses the dry-run (an account that may read
but not patch, or an admission webhook that is down): it compares only the fields the manifest
sets, and takes an absent field for the zero value the server omits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
SCALABLE_KINDS = ("Deployment", "StatefulSet")
MAX_PATHS = 50
"""Differing paths reported per object: enough to say what changed, bounded for status and Events."""
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


# --- the dry-run comparison -----------------------------------------------------------------------


def compare_dry_run(live: Mapping[str, Any], dry_run: Mapping[str, Any]) -> tuple[str, ...]:
    """Paths where `dry_run` (the server's answer to applying the manifest's object) differs from `live`."""
    out: list[str] = []
    live_meta, dry_meta = live.get("metadata") or {}, dry_run.get("metadata") or {}
    for part in ("labels", "annotations"):
        have, want = live_meta.get(part) or {}, dry_meta.get(part) or {}
        # Only what applying adds or changes: labels others put on the object are theirs.
        out += [_key(f"metadata.{part}", k) for k, v in want.items() if have.get(k) != v]
    _walk(_body(live), _normalise_dry_run(_body(dry_run)), "", out)
    return tuple(out[:MAX_PATHS])


def _body(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _normalise_dry_run(obj: dict[str, Any]) -> dict[str, Any]:
    # Flux's normalize.DryRunUnstructured: API servers before 1.27 answer an HPA dry-run with its
    # first metric repeated and an empty one appended (kubernetes#118293).
    if obj.get("kind") == "HorizontalPodAutoscaler" and isinstance(obj.get("spec"), dict):
        metrics = obj["spec"].get("metrics")
        if isinstance(metrics, list):
            kept: list[Any] = []
            for m in metrics:
                if isinstance(m, dict) and m.get("type") and m not in kept:
                    kept.append(m)
            obj = {**obj, "spec": {**obj["spec"], "metrics": kept}}
    return obj


def _walk(have: Any, want: Any, path: str, out: list[str]) -> None:
    if len(out) >= MAX_PATHS:
        return
    if isinstance(have, dict) and isinstance(want, dict):
        for key in sorted(set(have) | set(want), key=str):
            sub = _key(path, key)
            if key not in have or key not in want:
                out.append(sub)
            else:
                _walk(have[key], want[key], sub, out)
        return
    if isinstance(have, list) and isinstance(want, list) and len(have) == len(want):
        for i, (h, w) in enumerate(zip(have, want, strict=True)):
            _walk(h, w, f"{path}[{i}]", out)
        return
    if have != want or type(have) is not type(want):
        out.append(path or ".")


def _key(path: str, key: Any) -> str:
    k = str(key)
    if any(c in k for c in './[]"') or not k:
        return f'{path}["{k}"]'
    return f"{path}.{k}" if path else k


# --- the fallback: a field-by-field comparison of what the manifest sets --------------------------


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


def _zero(value: Any) -> bool:
    """A value the API server does not write back (Go's omitempty), so that absent means it:
    null, false, 0, "", and lists and mappings holding nothing else."""
    if isinstance(value, dict):
        return all(_zero(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return value is None or value is False or (isinstance(value, int | float) and value == 0) or value == ""


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have and type(want) is type(have):
        return True
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    if isinstance(want, str) and not isinstance(have, str) and str(have) == want:
        return True  # a number the manifest wrote as a string
    if isinstance(want, int | float) and isinstance(have, int | float):
        return want == have
    a, b = quantity(want), quantity(have)
    return a is not None and a == b


def diff_fields(want: Any, have: Any, path: str = "") -> list[str]:
    """Paths (a.b[0].c) where `have` does not hold what `want` sets. A field `want` leaves null sets
    nothing; one it sets to a zero value (`false`, `0`, `""`, `{}`) matches an absent one."""
    if want is None:
        return []
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [] if have is None and _zero(want) else [path or "."]
        out: list[str] = []
        for key, value in want.items():
            sub = _key(path, key)
            if have.get(key) is None:
                if not _zero(value):
                    out.append(sub)
                continue
            out += diff_fields(value, have[key], sub)
        return out[:MAX_PATHS]
    if isinstance(want, list):
        if not isinstance(have, list):
            return [] if have is None and not want else [path]
        if len(want) != len(have):
            return [path]
        out = []
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            out += diff_fields(w, h, f"{path}[{i}]")
        return out
    if have is None:
        return [] if _zero(want) else [path]
    return [] if _same_scalar(want, have) else [path]


def compare_fields(desired: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[str, ...]:
    """The fallback comparison of a desired object (domain.desired) with its live object."""
    want = {k: v for k, v in desired.items() if k not in ("status", "metadata")}
    have = {k: v for k, v in live.items() if k not in ("status", "metadata")}
    meta_want, meta_have = desired.get("metadata") or {}, live.get("metadata") or {}
    out = [
        _key(f"metadata.{part}", k)
        for part in ("labels", "annotations")
        for k, v in (meta_want.get(part) or {}).items()
        if (meta_have.get(part) or {}).get(k) != v
    ]
    return tuple((out + diff_fields(want, have))[:MAX_PATHS])


# --- replicas: what stop and resume hold a workload to -------------------------------------------


def replicas_target(
    desired: Mapping[str, Any], *, stopped: bool, restore: Mapping[str, int] | None
) -> int | None:
    """The replicas a scalable workload must have now, or None when that is not the operator's call:
    zero while the app is stopped; when it resumes, the count remembered at the stop for a workload
    whose chart sets none (the chart's own count is compared like any field)."""
    if desired.get("kind") not in SCALABLE_KINDS:
        return None
    if stopped:
        return 0
    sets = "replicas" in (desired.get("spec") or {})
    name = str((desired.get("metadata") or {}).get("name", ""))
    remembered = (restore or {}).get(f"{desired.get('kind')}/{name}")
    return None if sets or remembered is None else remembered
