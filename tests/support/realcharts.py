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
