"""The release's live objects: read them (observe) and correct them (the correct action).

A thin seam over services/correction, so observe does only reads and the correct action only writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubemart.adapters.kube import Principal
from kubemart.domain.live_state import CorrectionResult, LiveState
from kubemart.models.appinstall import DriftMode
from kubemart.services.correction import Corrector


class LiveObjects:
    def __init__(self, corrector: Corrector) -> None:
        self.corrector = corrector

    async def read(
        self,
        *,
        release: str,
        namespace: str,
        manifest: Sequence[Mapping[str, Any]],
        mode: DriftMode,
        stopped: bool,
        restore: Mapping[str, int] | None,
        acting_as: Principal | None,
    ) -> LiveState:
        """Reads only (GETs and server-side apply dry-runs). Raises KubeError when nothing can be read."""
        return await self.corrector.read_live(
            release=release,
            namespace=namespace,
            manifest=manifest,
            mode=mode,
            stopped=stopped,
            restore=restore,
            acting_as=acting_as,
        )

    async def correct(
        self, live: LiveState, *, mode: DriftMode, stopped: bool, acting_as: Principal | None
    ) -> CorrectionResult:
        """Writes only, as `acting_as`: the corrections of what `read` found."""
        return await self.corrector.correct(live, mode=mode, stopped=stopped, acting_as=acting_as)
