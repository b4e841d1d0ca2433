"""Stored charts (Secrets) read as chart versions, with bounds (pure: bodies in, entries out).

Everything in a stored Secret is untrusted: its name, version and content come from the archive,
checked by `domain.chart_archive.inspect`; the labels only select it. A Secret that does not hold a
readable chart is left out with a note a person reads in the source's ChartsSkipped Event.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from kubemart.domain.chart_archive import ArchiveLimits, InvalidChart, inspect
from kubemart.domain.clip import clip
from kubemart.domain.upload_storage import DATA_KEY
from kubemart.sources.base import ChartVersions

MAX_NOTE = 240


@dataclass(frozen=True)
class Stored:
    """What one stored Secret holds: a chart version (an index entry), or why it is left out."""

    secret: str
    created: str
    entry: dict[str, Any] | None = None
    note: str | None = None


def key_of(meta: dict[str, Any]) -> tuple[str, str]:
    """What identifies a stored object's content: its uid and resourceVersion (any write changes it)."""
    return str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")


def archive_of(body: dict[str, Any], limits: ArchiveLimits) -> bytes:
    """The archive's bytes from a stored Secret's data; raises InvalidChart."""
    encoded = (body.get("data") or {}).get(DATA_KEY)
    if not isinstance(encoded, str):
        raise InvalidChart(f"it has no {DATA_KEY} key")
    # base64 is 4/3 of the bytes: refuse before decoding what cannot fit.
    if len(encoded) > (limits.max_compressed_bytes + 2) // 3 * 4:
        raise InvalidChart(f"its archive is over {limits.max_compressed_bytes // 1024} KiB")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidChart(f"its {DATA_KEY} is not base64") from None


def read_stored(body: dict[str, Any], limits: ArchiveLimits) -> Stored:
    """One stored Secret as a chart version, or a note. Blocking (gzip, tar, YAML): run it in a thread."""
    meta = body.get("metadata") or {}
    name, created = str(meta.get("name") or ""), str(meta.get("creationTimestamp") or "")
    try:
        chart = inspect(archive_of(body, limits), limits)
    except InvalidChart as exc:
        return Stored(
            name, created, note=clip(f"Secret {name} holds no usable chart: {exc}; upload it again", MAX_NOTE)
        )
    entry = dict(chart.metadata) | {
        "name": chart.name,
        "version": chart.version,
        "digest": chart.digest,
        "urls": [name],
        "created": created,
    }
    return Stored(name, created, entry=entry)


def assemble(stored: list[Stored]) -> tuple[ChartVersions, list[str]]:
    """Chart name -> versions, and notes. Two Secrets with one chart version: the first stored wins."""
    charts: ChartVersions = {}
    seen: dict[tuple[str, str], str] = {}
    notes: list[str] = []
    for item in sorted(stored, key=lambda s: (s.created, s.secret)):
        if item.entry is None:
            notes.append(item.note or f"Secret {item.secret} holds no usable chart")
            continue
        version = (item.entry["name"], item.entry["version"])
        if version in seen:
            notes.append(
                clip(
                    f"Secret {item.secret} holds {version[0]} {version[1]}, which Secret {seen[version]} stored "
                    "first; delete one of them",
                    MAX_NOTE,
                )
            )
            continue
        seen[version] = item.secret
        charts.setdefault(version[0], []).append(item.entry)
    return charts, notes
