"""Files inside a cached chart archive, read with bounds (the archive came from a catalog server)."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from kubemart.domain import safe_yaml
from kubemart.domain.manifest_template import plain

MAX_MANIFEST_BYTES = 256 * 1024


def olares_manifest(chart: Path) -> dict[str, Any] | None:
    """The chart's top-level OlaresManifest.yaml (an Olares Market app's entrances, title, ...), or None.

    Blocking (tar and YAML): run it in a thread. Anything unreadable or over 256 KiB is None.
    """
    try:
        with tarfile.open(chart, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "OlaresManifest.yaml" and member.isfile():
                    if member.size > MAX_MANIFEST_BYTES:
                        return None
                    handle = tar.extractfile(member)
                    if handle is None:
                        return None
                    raw = handle.read(MAX_MANIFEST_BYTES).decode("utf-8", errors="replace")
                    # Olares renders the manifest as a Go template first; its line actions are resolved.
                    doc = safe_yaml.load(plain(raw), limits=safe_yaml.Limits(max_depth=16, seconds=2.0))
                    return doc if isinstance(doc, dict) else None
    except (OSError, tarfile.TarError, safe_yaml.UnsafeYAML, EOFError, ValueError):
        return None
    return None
