"""What a release's live objects are against its manifest: the frozen result of the correction's
read half (services.correction.Corrector.read_live), and of its write half (`correct`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubemart.domain.drift import Drift, ObjectRef


@dataclass(frozen=True)
class Unreadable:
    """An object of the manifest the operator could not check, and why."""

    ref: ObjectRef
    reason: str
    """KindNotServed (no CRD for it) or Forbidden (the acting account may not read it)."""
    message: str

    def describe(self) -> str:
        return f"{self.ref} cannot be checked: {self.message}"


@dataclass(frozen=True)
class LiveState:
    """What the release's objects are, against its manifest (the result of `read_live`)."""

    drift: tuple[Drift, ...] = ()
    unhealthy: tuple[str, ...] = ()
    replicas: Mapping[str, int] = field(default_factory=dict)
    """Live replicas of scalable workloads, by `Kind/name` (remembered when stopping)."""
    scaled_to_zero: bool = True
    """Every Deployment and StatefulSet has no replicas left (what Stopped means)."""
    unreadable: tuple[Unreadable, ...] = ()
    compared_by_fields: tuple[str, ...] = ()
    """Objects compared field by field because the API server refused their dry-run, with why."""
    requests: int = 0
    """API requests made for this read (GETs and dry-runs; discovery is cached apart)."""
    desired: Mapping[ObjectRef, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    """The manifest's object of each drifted one, as `correct` applies it (domain.desired)."""
    targets: Mapping[ObjectRef, int] = field(default_factory=dict)
    """Replicas a stop or resume holds a workload to."""


@dataclass(frozen=True)
class CorrectionResult:
    corrected: tuple[Drift, ...] = ()
    failed: tuple[str, ...] = ()
    """Corrections the API server refused, with why."""
