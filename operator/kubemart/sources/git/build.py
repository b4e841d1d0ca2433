"""From a git tree's files to catalog entries and chart archives (pure; called in the catalog pool).

Each chart directory is packaged as helm would (.helmignore respected, charts/ kept) and each app
definition as the generic chart with its values; the archive's sha256 is the version's digest. Whatever
cannot be read is left out with a note saying why; the rest of the catalog stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kubemart.domain import safe_yaml
from kubemart.domain.clip import one_line
from kubemart.models.marketsource import DefinitionPolicy
from kubemart.sources.git import definitions as defs
from kubemart.sources.git.layout import ignored, parse_helmignore, relative
from kubemart.sources.git.package import ChartTooLarge, build_archive, definition_archive, digest_of
from kubemart.sources.git.remote import TreeEntry

MAX_NOTE = 240
_CHART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHART_YAML = safe_yaml.Limits(max_depth=16, max_nodes=5000, max_aliases=0, seconds=2.0)
_MANIFEST = safe_yaml.Limits(max_depth=16, max_nodes=20000, max_aliases=0, seconds=2.0)
_DEFINITION = safe_yaml.Limits(max_depth=8, max_nodes=5000, max_aliases=0, seconds=2.0)


@dataclass(frozen=True)
class BuildLimits:
    max_file_bytes: int = 1024 * 1024
    """Largest YAML file read (Chart.yaml, a definition)."""
    max_manifest_bytes: int = 256 * 1024
    """Largest OlaresManifest.yaml read (as sources/archive.py reads them from archives)."""
    manifests_total_bytes: int = 64 * 1024 * 1024
    """OlaresManifest.yaml files read in one sync, in all: parsed manifests stay in memory until the
    catalog is built; past it, charts keep their Chart.yaml metadata only."""
    chart_max_bytes: int = 20 * 1024 * 1024


@dataclass
class Built:
    charts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    archives: dict[str, bytes] = field(default_factory=dict)
    """Digest -> archive bytes, to put in the chart cache."""
    notes: list[str] = field(default_factory=list)
    manifest_bytes: int = 0
    """Bytes of the OlaresManifest.yaml files read so far."""
    made: dict[str, str] = field(default_factory=dict)
    """Where (a chart directory or a definition's path) -> the digest of the archive packaged from it."""

    def add(
        self, name: str, entry: dict[str, Any], archive: bytes | None, where: str, digest: str = ""
    ) -> None:
        """One version; `archive` None when it is already in the cache under `digest`."""
        versions = self.charts.setdefault(name, [])
        if any(v.get("version") == entry.get("version") for v in versions):
            self.note(where, f"{name} {entry.get('version')} is also defined elsewhere in the tree; left out")
            return
        if archive is not None:
            digest = digest_of(archive)
            self.archives[digest] = archive
            self.made[where] = digest
        entry["digest"] = f"sha256:{digest}"
        entry["urls"] = [where]
        versions.append(entry)

    def note(self, where: str, why: str) -> None:
        self.notes.append(one_line(f"{where[-100:]}: {why}", MAX_NOTE))


def _yaml(content: bytes, limits: safe_yaml.Limits, what: str) -> Any:
    return safe_yaml.load(content, limits=limits, source=what)


_ACTION_LINE = re.compile(r"^\s*\{\{-?\s*(?P<word>if|else|end|range|with|define|block)?\b.*?-?\}\}\s*$")
_ACTION = re.compile(r"\{\{.*?\}\}")


def untemplate(text: str) -> str:
    """A templated OlaresManifest.yaml (46 of the 240 in the Olares repository are Helm templates) as
    plain YAML, approximately: the first branch of each if/else, other actions removed. Olares renders
    them with install-time values; the catalog only needs the metadata, which no branch changes."""
    out: list[str] = []
    dropping: list[bool] = []  # per open block: whether its current branch is dropped
    for line in text.splitlines():
        m = _ACTION_LINE.match(line)
        if m is None:
            if not any(dropping):
                out.append(_ACTION.sub("", line))
            continue
        word = m.group("word")
        if word in ("if", "range", "with", "define", "block"):
            dropping.append(False)
        elif word == "else" and dropping:
            dropping[-1] = True
        elif word == "end" and dropping:
            dropping.pop()
    return "\n".join(out)


def olares_manifest(content: bytes) -> dict[str, Any] | None:
    """The parsed OlaresManifest.yaml, through `untemplate` when it is a template; None if unreadable."""
    try:
        doc = _yaml(content, _MANIFEST, "OlaresManifest.yaml")
    except safe_yaml.UnsafeYAML:
        text = content.decode("utf-8", "replace")
        if "{{" not in text:
            return None
        try:
            doc = _yaml(untemplate(text).encode(), _MANIFEST, "OlaresManifest.yaml")
        except safe_yaml.UnsafeYAML:
            return None
    return doc if isinstance(doc, dict) else None


def chart_entry(
    directory: str,
    files: list[TreeEntry],
    blobs: dict[str, bytes],
    limits: BuildLimits,
    *,
    package: bool = True,
    read_manifest: bool = True,
) -> tuple[str, dict[str, Any], bytes | None]:
    """(chart name, index entry, archive or None without `package`) of one chart directory; ValueError
    says why it cannot be."""
    by_rel = {relative(e.path, directory): e for e in files}
    helmignore = by_rel.get(".helmignore")
    rules = parse_helmignore(blobs.get(helmignore.oid, b"").decode("utf-8", "replace") if helmignore else "")
    chart_file = by_rel["Chart.yaml"]
    if chart_file.size > limits.max_file_bytes:
        raise ValueError(f"Chart.yaml is larger than {limits.max_file_bytes} bytes")
    meta = _yaml(blobs[chart_file.oid], _CHART_YAML, "Chart.yaml")
    if not isinstance(meta, dict):
        raise ValueError("Chart.yaml is not a mapping")
    name, version = meta.get("name"), meta.get("version")
    if not isinstance(name, str) or not _CHART_NAME.match(name):
        raise ValueError("Chart.yaml has no valid name")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        raise ValueError("Chart.yaml has no version")
    archive = None
    if package:
        kept: dict[str, tuple[bytes, bool]] = {}
        for rel, e in by_rel.items():
            if ignored(rules, rel):
                continue
            if e.oid not in blobs:
                raise ValueError(f"{rel} could not be read")
            kept[rel] = (blobs[e.oid], e.mode == "100755")
        try:
            archive = build_archive(name, kept, max_bytes=limits.chart_max_bytes)
        except ChartTooLarge as exc:
            raise ValueError(str(exc)) from exc
    entry: dict[str, Any] = {k: v for k, v in meta.items() if k != "dependencies"}
    entry["version"] = str(version)
    manifest = by_rel.get("OlaresManifest.yaml")
    if (
        read_manifest
        and manifest is not None
        and manifest.size <= limits.max_manifest_bytes
        and manifest.oid in blobs
    ):
        doc = olares_manifest(blobs[manifest.oid])
        if doc is not None:
            entry["olaresManifest"] = doc
    return name, entry, archive


def definition_entry(
    content: bytes, policy: DefinitionPolicy | None, limits: BuildLimits, *, package: bool = True
) -> tuple[str, dict[str, Any], bytes | None]:
    """(app id, index entry, archive or None without `package`) of one app definition; ValueError says
    why it cannot be."""
    doc = _yaml(content, _DEFINITION, "the definition")
    if not isinstance(doc, dict):
        raise ValueError("it is not a YAML mapping")
    try:
        definition = defs.Definition.model_validate(doc)
    except ValidationError as exc:
        raise ValueError(f"invalid: {defs.error_note(exc)}") from None
    refused = defs.refusal(definition, policy)
    if refused:
        raise ValueError(refused)
    entry = defs.index_entry(definition)
    if not package:
        return definition.id, entry, None
    chart_meta: dict[str, Any] = {
        k: entry[k]
        for k in ("appVersion", "description", "icon", "home", "keywords", "annotations")
        if k in entry
    }
    archive = definition_archive(
        definition.id,
        entry["version"],
        chart_meta,
        defs.chart_values(definition),
        defs.security(definition),
        max_bytes=limits.chart_max_bytes,
    )
    return definition.id, entry, archive


def build(
    charts: dict[str, list[TreeEntry]],
    definitions: list[TreeEntry],
    blobs: dict[str, bytes],
    policy: DefinitionPolicy | None,
    limits: BuildLimits,
    into: Built | None = None,
    known: dict[str, str] | None = None,
) -> Built:
    """The apps of these chart directories and definitions; those in `known` (where -> digest of an
    archive already in the cache, packaged from the same content) are read but not packaged again."""
    out = into or Built()
    known = known or {}
    for directory in sorted(charts):
        where = directory or "."
        try:
            name, entry, archive = chart_entry(
                directory,
                charts[directory],
                blobs,
                limits,
                package=where not in known,
                read_manifest=out.manifest_bytes < limits.manifests_total_bytes,
            )
            if "olaresManifest" in entry:
                out.manifest_bytes += sum(
                    e.size for e in charts[directory] if relative(e.path, directory) == "OlaresManifest.yaml"
                )
        except (ValueError, KeyError, safe_yaml.UnsafeYAML) as exc:
            out.note(where, f"left out: {exc}")
            continue
        out.add(name, entry, archive, where, known.get(where, ""))
    for e in sorted(definitions, key=lambda d: d.path):
        if e.size > limits.max_file_bytes:
            out.note(e.path, f"left out: larger than {limits.max_file_bytes} bytes")
            continue
        try:
            name, entry, archive = definition_entry(
                blobs.get(e.oid, b""), policy, limits, package=e.path not in known
            )
        except (ValueError, safe_yaml.UnsafeYAML) as exc:
            out.note(e.path, f"left out: {exc}")
            continue
        out.add(name, entry, archive, e.path, known.get(e.path, ""))
    return out


def batches(charts: dict[str, list[TreeEntry]], max_bytes: int) -> list[dict[str, list[TreeEntry]]]:
    """Chart directories grouped so that one group's files add up to about `max_bytes` at most."""
    groups: list[dict[str, list[TreeEntry]]] = [{}]
    size = 0
    for directory in sorted(charts):
        files = charts[directory]
        total = sum(e.size for e in files)
        if groups[-1] and size + total > max_bytes:
            groups.append({})
            size = 0
        groups[-1][directory] = files
        size += total
    return groups
