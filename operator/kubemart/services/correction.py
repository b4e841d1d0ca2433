"""Status correction: compare a release's live objects with its manifest, correct or report, and
judge workload health. Runs inside the AppInstall reconcile, so it never races an operation.

Reads are GETs of the release's own objects; writes happen only where something drifted (a
server-side apply of the manifest's object, as field manager `kubemart`), so an app in sync
costs no write and no helm subprocess.

Writes act as the app's ServiceAccount when it has one (`acting_as`), never as the operator: the
manifest comes from a Secret in the tenant's namespace, and re-applying it with the operator's
rights would let whoever can write that Secret create objects the tenant itself may not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from kubemart.adapters.helm import Helm
from kubemart.adapters.kube import Kube, KubeError, Principal
from kubemart.domain.drift import (
    SCALABLE_KINDS,
    WORKLOAD_KINDS,
    Drift,
    ObjectRef,
    desired_state,
    find_drift,
    ref_of,
    workload_health,
)
from kubemart.models.appinstall import DriftMode


@dataclass
class Check:
    drift: list[Drift] = field(default_factory=list)
    corrected: list[Drift] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Corrections the API server refused, with why."""
    unhealthy: list[str] = field(default_factory=list)
    scaled_to_zero: bool = True
    """Every Deployment and StatefulSet has no replicas left (what Stopped means)."""
    replicas: dict[str, int] = field(default_factory=dict)
    """Live replicas of scalable workloads, by `Kind/name` (remembered when stopping)."""


class Corrector:
    def __init__(self, kube: Kube, helm: Helm) -> None:
        self.kube = kube
        self.helm = helm

    async def check(
        self,
        *,
        release: str,
        namespace: str,
        revision: int,
        mode: DriftMode,
        stopped: bool,
        restore: dict[str, int] | None = None,
        acting_as: Principal | None = None,
    ) -> Check:
        manifest = await self.helm.manifest(release, namespace, revision)
        result = await self.read_live(
            manifest=manifest, namespace=namespace, mode=mode, stopped=stopped, restore=restore
        )
        if mode is DriftMode.WARN and not stopped:
            return result
        done = await self.correct(
            result.drift,
            manifest=manifest,
            namespace=namespace,
            mode=mode,
            stopped=stopped,
            restore=restore,
            acting_as=acting_as,
        )
        result.corrected, result.failed = done.corrected, done.failed
        return result

    async def read_live(
        self,
        *,
        manifest: list[dict[str, Any]],
        namespace: str,
        mode: DriftMode,
        stopped: bool,
        restore: dict[str, int] | None = None,
    ) -> Check:
        """Reads only: the live objects' drift from `manifest`, workload health and replicas."""
        wanted = (
            manifest
            if mode is not DriftMode.DISABLED or stopped
            else [o for o in manifest if o.get("kind") in WORKLOAD_KINDS]
        )
        refs = [
            ref_of(
                o, default_namespace=namespace, namespaced=self.kube.is_namespaced(o["apiVersion"], o["kind"])
            )
            for o in wanted
        ]
        lives = await asyncio.gather(*(self._get(r) for r in refs))
        live = dict(zip(refs, lives, strict=True))
        result = Check()
        for ref, obj in live.items():
            if obj is None or ref.kind not in WORKLOAD_KINDS:
                continue
            if ref.kind in SCALABLE_KINDS:
                result.replicas[f"{ref.kind}/{ref.name}"] = int((obj.get("spec") or {}).get("replicas", 1))
                if (obj.get("status") or {}).get("replicas"):
                    result.scaled_to_zero = False
            if not stopped and (problem := workload_health(obj)):
                result.unhealthy.append(problem)
        if mode is DriftMode.DISABLED and not stopped:
            return result
        # With drift detection off, a stop still has to hold: compare only the workloads then.
        drift = find_drift(
            wanted,
            lambda r: live.get(r),
            default_namespace=namespace,
            namespaced=self.kube.is_namespaced,
            stopped=stopped,
        )
        if stopped or restore:
            drift = self._with_restore(drift, wanted, live, namespace, stopped, restore or {})
        result.drift = drift
        return result

    async def correct(
        self,
        drift: list[Drift],
        *,
        manifest: list[dict[str, Any]],
        namespace: str,
        mode: DriftMode,
        stopped: bool,
        restore: dict[str, int] | None = None,
        acting_as: Principal | None = None,
    ) -> Check:
        """Writes only, as `acting_as`: the corrections of `drift` (found by read_live)."""
        writer = self.kube.acting_as(acting_as)
        result = Check()
        refs = {
            ref_of(
                o, default_namespace=namespace, namespaced=self.kube.is_namespaced(o["apiVersion"], o["kind"])
            ): o
            for o in manifest
        }
        for d in drift:
            obj = refs.get(d.ref)
            if obj is None:
                continue
            try:
                if d.fields == ("spec.replicas",) and d.ref.kind in SCALABLE_KINDS:
                    # A stop, a resume, or replicas changed by hand: only the count moves.
                    await writer.scale(
                        d.ref.api_version,
                        d.ref.kind,
                        d.ref.name,
                        namespace,
                        self._replicas(obj, d.ref, stopped, restore),
                    )
                elif mode is DriftMode.ENABLED:
                    body = desired_state(obj, stopped=stopped)
                    body["metadata"] = {**(obj.get("metadata") or {}), "name": d.ref.name}
                    await writer.apply_object(body, namespace=d.ref.namespace)
                else:
                    continue  # warn: report only
                result.corrected.append(d)
            except KubeError as err:
                result.failed.append(f"{d.ref}: {err.message}")
        return result

    def _with_restore(
        self,
        drift: list[Drift],
        wanted: list[dict[str, Any]],
        live: dict[ObjectRef, dict[str, Any] | None],
        namespace: str,
        stopped: bool,
        restore: dict[str, int],
    ) -> list[Drift]:
        """Replicas the chart does not set: zero while stopped, the remembered count when resumed."""
        seen = {d.ref for d in drift}
        out = list(drift)
        for obj in wanted:
            if obj.get("kind") not in SCALABLE_KINDS or "replicas" in (obj.get("spec") or {}):
                continue
            ref = ref_of(obj, default_namespace=namespace, namespaced=True)
            have = live.get(ref)
            if have is None or ref in seen:
                continue
            current = (have.get("spec") or {}).get("replicas", 1)
            want = 0 if stopped else restore.get(f"{ref.kind}/{ref.name}")
            if want is not None and current != want:
                out.append(Drift(ref, missing=False, fields=("spec.replicas",)))
        return out

    @staticmethod
    def _replicas(obj: dict[str, Any], ref: ObjectRef, stopped: bool, restore: dict[str, int] | None) -> int:
        if stopped:
            return 0
        chart = (obj.get("spec") or {}).get("replicas")
        if chart is not None:
            return int(chart)
        return (restore or {}).get(f"{ref.kind}/{ref.name}", 1)

    async def _get(self, ref: ObjectRef) -> dict[str, Any] | None:
        return await self.kube.get_object(ref.api_version, ref.kind, ref.name, ref.namespace)
