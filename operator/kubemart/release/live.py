"""The release's live objects: read them (observe) and correct them (the correct action).

A thin seam over services/correction, so observe does only reads and the correct action only writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubemart.adapters.kube import Kube, KubeError, Principal
from kubemart.domain.drift import Drift
from kubemart.models.appinstall import DriftMode
from kubemart.release.state import Live
from kubemart.services.correction import Corrector


@dataclass(frozen=True)
class Corrected:
    corrected: tuple[Drift, ...]
    failed: tuple[str, ...]


class LiveObjects:
    def __init__(self, kube: Kube, corrector: Corrector) -> None:
        self.kube = kube
        self.corrector = corrector

    async def read(
        self,
        *,
        manifest: Sequence[dict[str, Any]],
        namespace: str,
        mode: DriftMode,
        stopped: bool,
        restore: dict[str, int] | None,
    ) -> Live:
        """Raises KubeError when the objects cannot be read at all."""
        found = await self.corrector.read_live(
            manifest=list(manifest), namespace=namespace, mode=mode, stopped=stopped, restore=restore
        )
        return Live(
            drift=tuple(found.drift),
            unhealthy=tuple(found.unhealthy),
            scaled_to_zero=found.scaled_to_zero,
            replicas=dict(found.replicas),
            unreadable=tuple(getattr(found, "unreadable", ()) or ()),
        )

    async def correct(
        self,
        live: Live,
        *,
        manifest: Sequence[dict[str, Any]],
        namespace: str,
        mode: DriftMode,
        stopped: bool,
        restore: dict[str, int] | None,
        acting_as: Principal | None,
    ) -> Corrected:
        try:
            done = await self.corrector.correct(
                list(live.drift),
                manifest=list(manifest),
                namespace=namespace,
                mode=mode,
                stopped=stopped,
                restore=restore,
                acting_as=acting_as,
            )
        except KubeError as err:
            return Corrected((), (err.message,))
        return Corrected(tuple(done.corrected), tuple(done.failed))
