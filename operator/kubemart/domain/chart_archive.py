"""A chart archive (.tgz) someone uploaded, checked before anything else reads it (pure: bytes in).

An uploaded archive is untrusted: whoever may write the storage wrote it. It is read as a stream
with every bound checked before the bytes are: at most `max_files` members, each a regular file or a
directory under one top-level directory, with a relative path and no `..` (no symlinks, hard links or
devices: helm would follow them), each file at most `max_file_bytes` and all of them at most
`max_total_bytes` once decompressed (a gzip bomb stops at that bound, not at the end of the stream),
and a Chart.yaml read with `safe_yaml`'s bounds. The plugin runs the same checks before it uploads,
so a person hears the answer at once; the operator runs them again on what it reads from storage.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any

from kubemart.domain import safe_yaml
from kubemart.domain.clip import one_line
from kubemart.domain.versions import sort_versions_desc

MAX_STORED_BYTES = 1024 * 1024 - 16 * 1024
"""Largest compressed archive stored: a Secret holds at most 1 MiB of data, less room for the rest."""
CHART_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""Uploaded chart names are one DNS label: they name a MarketApp and label a Secret."""
MAX_CHART_YAML = 256 * 1024


class InvalidChart(ValueError):
    """The archive is not a chart that may be stored; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_compressed_bytes: int = MAX_STORED_BYTES
    max_total_bytes: int = 50 * 1024 * 1024
    """All files decompressed (helm's own bound is 100 MiB)."""
    max_file_bytes: int = 5 * 1024 * 1024
    """One file decompressed (helm's own bound)."""
    max_files: int = 5000


@dataclass(frozen=True)
class ChartArchive:
    name: str
    version: str
    metadata: dict[str, Any]
    """Chart.yaml as read (bounded): the fields a Helm index entry carries."""
    digest: str
    """sha256 hex of the archive's bytes."""
    size: int


def inspect(data: bytes, limits: ArchiveLimits | None = None) -> ChartArchive:
    """The chart in `data` after every check; raises InvalidChart. Blocking: call it in a thread."""
    limits = limits or ArchiveLimits()
    if len(data) > limits.max_compressed_bytes:
        raise InvalidChart(
            f"the archive is {human_size(len(data))}, over the {human_size(limits.max_compressed_bytes)} an uploaded chart "
            "may be (one Secret holds at most 1 MiB); publish a chart that big to a Helm or OCI repository"
        )
    chart_yaml: bytes | None = None
    top: str | None = None
    total = files = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                files += 1
                if files > limits.max_files:
                    raise InvalidChart(f"the archive holds more than {limits.max_files} files")
                parts = _parts(member.name)
                if top is None:
                    top = parts[0]
                elif parts[0] != top:
                    raise InvalidChart(
                        f"the archive has more than one top-level directory ({top!r}, {parts[0]!r}); a chart "
                        "archive holds one directory, as `helm package` makes it"
                    )
                if member.isdir():
                    continue
                if not member.isfile():
                    raise InvalidChart(
                        f"{one_line(member.name, 120)} is a link or a device; an uploaded chart holds only "
                        "files and directories"
                    )
                if member.size > limits.max_file_bytes:
                    raise InvalidChart(
                        f"{one_line(member.name, 120)} is {human_size(member.size)} decompressed, over "
                        f"{human_size(limits.max_file_bytes)}"
                    )
                total += member.size
                if total > limits.max_total_bytes:
                    raise InvalidChart(
                        f"the archive is over {human_size(limits.max_total_bytes)} decompressed; make the chart smaller"
                    )
                if len(parts) == 2 and parts[1] == "Chart.yaml":
                    if member.size > MAX_CHART_YAML:
                        raise InvalidChart(f"Chart.yaml is over {human_size(MAX_CHART_YAML)}")
                    handle = tar.extractfile(member)
                    chart_yaml = handle.read(MAX_CHART_YAML) if handle else None
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise InvalidChart(
            f"the archive is not a gzipped tar file ({one_line(str(exc), 120)}); give a chart directory or "
            "what `helm package` makes"
        ) from None
    if top is None or chart_yaml is None:
        raise InvalidChart("the archive holds no <chart>/Chart.yaml; is it a Helm chart?")
    name, version, metadata = read_chart_yaml(chart_yaml)
    return ChartArchive(name, version, metadata, hashlib.sha256(data).hexdigest(), len(data))


def _parts(name: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or name.startswith("/") or "\\" in name or ".." in parts:
        raise InvalidChart(
            f"the archive holds the path {one_line(name, 120)!r}; paths must be relative, without '..'"
        )
    return parts


def read_chart_yaml(raw: bytes) -> tuple[str, str, dict[str, Any]]:
    try:
        doc = safe_yaml.load(
            raw,
            limits=safe_yaml.Limits(max_depth=16, max_nodes=20_000, max_aliases=0, seconds=2.0),
            source="Chart.yaml",
        )
    except safe_yaml.UnsafeYAML as exc:
        raise InvalidChart(f"Chart.yaml cannot be read: {one_line(str(exc), 200)}") from None
    if not isinstance(doc, dict):
        raise InvalidChart("Chart.yaml is not a mapping")
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not CHART_NAME.fullmatch(name):
        raise InvalidChart(
            f"Chart.yaml's name {one_line(str(name), 80)!r} is not one DNS label (lowercase letters, digits "
            "and '-', at most 63); uploaded charts are named that way"
        )
    if not isinstance(version, str) or not sort_versions_desc([version]) or len(version) > 128:
        raise InvalidChart(f"Chart.yaml's version {one_line(str(version), 80)!r} is not a semantic version")
    return name, version, {str(k): v for k, v in doc.items()}


def human_size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"
