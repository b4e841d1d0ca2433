"""observe()'s part of the requirements check: what decide() needs to judge whether the app fits.

Read only before an install or an upgrade (a release in sync is never checked), and only with
KUBEMART_CHECK_REQUIREMENTS on: the catalog's requirements (MarketApp.spec.requirements), those the
installed version was checked against (status.requirements), the cluster's free capacity (the
capacity watch's snapshot, in memory) and version, and the kubeVersion of the cached chart.
"""

from __future__ import annotations

import asyncio
import tarfile
from collections import OrderedDict
from pathlib import Path

from kubemart.domain import safe_yaml
from kubemart.domain.capacity import FitInputs
from kubemart.domain.chart_archive import MAX_CHART_YAML
from kubemart.models.marketapp import MarketApp
from kubemart.release.state import ReleaseState
from kubemart.services.capacity import CapacityWatch

KNOWN_CHARTS = 256
"""Charts whose kubeVersion is remembered (by archive path, which names its digest)."""
MAX_MEMBERS = 5000
_LIMITS = safe_yaml.Limits(max_depth=16, max_nodes=20_000, max_aliases=0, seconds=2.0)


class FitReader:
    def __init__(self, capacity: CapacityWatch) -> None:
        self.capacity = capacity
        self._kube_versions: OrderedDict[Path, str | None] = OrderedDict()

    async def read(self, state: ReleaseState, market_app: MarketApp) -> FitInputs | None:
        desired = state.desired
        if desired is None or (state.release.exists and state.status.applied_hash == desired.applied_hash):
            return None
        await self.capacity.ready()
        return FitInputs(
            requirements=market_app.spec.requirements,
            installed_with=state.status.requirements,
            capacity=self.capacity.snapshot(),
            cluster_version=await self.capacity.cluster_version(),
            # The cached chart's own Chart.yaml, else what the index said: checked before a download.
            kube_version=(await self._kube_version(state.chart) if state.chart is not None else None)
            or desired.version.kube_version,
        )

    async def _kube_version(self, chart: Path) -> str | None:
        if chart in self._kube_versions:
            self._kube_versions.move_to_end(chart)
            return self._kube_versions[chart]
        found = await asyncio.to_thread(chart_kube_version, chart)
        self._kube_versions[chart] = found
        while len(self._kube_versions) > KNOWN_CHARTS:
            self._kube_versions.popitem(last=False)
        return found


def chart_kube_version(path: Path) -> str | None:
    """Chart.yaml's kubeVersion in a chart archive; None when it has none or cannot be read (helm
    then judges). Blocking and bounded: call it in a thread."""
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    return None
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if len(parts) != 2 or parts[1] != "Chart.yaml" or not member.isfile():
                    continue
                if member.size > MAX_CHART_YAML:
                    return None
                handle = tar.extractfile(member)
                doc = (
                    safe_yaml.load(handle.read(MAX_CHART_YAML), limits=_LIMITS, source="Chart.yaml")
                    if handle
                    else None
                )
                value = doc.get("kubeVersion") if isinstance(doc, dict) else None
                return value if isinstance(value, str) and 0 < len(value) <= 512 else None
    except (tarfile.TarError, OSError, EOFError, safe_yaml.UnsafeYAML, ValueError):
        return None
    return None
