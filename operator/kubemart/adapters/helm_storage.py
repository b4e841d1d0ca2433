"""Helm's release records as it stores them (Secrets labelled owner=helm), read with bounds.

The records live in the app's namespace, where a tenant may write: every read here is bounded
(decompressed size, YAML aliases and depth), so a forged record costs nothing but a refusal.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubemart.domain import safe_yaml


@dataclass(frozen=True)
class ReleaseRecord:
    """One revision of a release, as Helm stored it."""

    name: str
    namespace: str
    revision: int
    status: str
    """deployed, failed, superseded, pending-install, pending-upgrade, pending-rollback, uninstalling, ..."""
    chart_version: str | None = None
    manifest: str = field(default="", repr=False)
    modified_at: float | None = None
    """Unix time Helm last wrote this revision, from its storage labels."""
    labels: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The labels of the revision's storage Secret (helm's own and those given with --labels)."""
    uid: str | None = None
    """The uid of the revision's storage Secret: what a tenant cannot forge."""


@dataclass(frozen=True)
class ReleaseHistory:
    revisions: tuple[ReleaseRecord, ...]
    """Newest first."""

    @property
    def current(self) -> ReleaseRecord | None:
        return self.revisions[0] if self.revisions else None

    @property
    def last_deployed(self) -> ReleaseRecord | None:
        return next((r for r in self.revisions if r.status in ("deployed", "superseded")), None)


MAX_RELEASE_BYTES = 32 * 1024 * 1024
"""The largest decompressed release record read: helm's own stay far below (a Secret holds 1 MiB)."""


def decode_release(data: str) -> dict[str, Any]:
    """Helm's storage format: base64 (by Helm) of gzip of JSON, inside a Secret's data.

    Raises ValueError for anything else, including a record that decompresses past MAX_RELEASE_BYTES
    (the Secret is in a tenant's namespace: it may be forged).
    """
    try:
        raw = base64.b64decode(base64.b64decode(data))
    except (ValueError, TypeError) as exc:
        raise ValueError("the release record is not base64") from exc
    if raw[:2] == b"\x1f\x8b":
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            raw = inflate.decompress(raw, MAX_RELEASE_BYTES + 1)
        except zlib.error as exc:
            raise ValueError("the release record is not valid gzip") from exc
        if len(raw) > MAX_RELEASE_BYTES or inflate.unconsumed_tail:
            raise ValueError(f"the release record decompresses to more than {MAX_RELEASE_BYTES} bytes")
    result = json.loads(raw)
    if not isinstance(result, dict):
        raise ValueError("the release record is not a JSON object")
    return result


def manifest_of_record(data: str) -> list[dict[str, Any]]:
    try:
        return manifest_objects(str(decode_release(data).get("manifest", "")))
    except ValueError:
        return []


def int_label(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def unix_label(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def manifest_objects(manifest: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest (pure). Raises ValueError (UnsafeYAML) for a hostile one."""
    limits = safe_yaml.Limits(max_depth=128, seconds=10.0)
    return [
        d
        for d in safe_yaml.load_all(manifest, limits=limits, source="the release manifest")
        if isinstance(d, dict) and d.get("kind")
    ]
