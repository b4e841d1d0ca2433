"""Chart archives made from a git tree, byte for byte the same for the same content (pure).

helm installs from an archive; the archive's sha256 is the version's digest in the catalog, so it
must depend on nothing but the files: entries sorted, mtime 0, owner 0/0 with no names, modes 0644
or 0755 (from git's mode), gzip without a name or time. The same tree always yields the same digest,
and a re-sync of an unchanged app writes nothing.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import tarfile
from importlib import resources
from typing import Any

GENERIC_CHART = "app-definition"
"""The directory (in this package) of the chart app definitions are rendered through."""


class ChartTooLarge(ValueError):
    pass


def build_archive(top: str, files: dict[str, tuple[bytes, bool]], *, max_bytes: int) -> bytes:
    """A .tgz of `files` (relative path -> (content, executable)) under the directory `top`."""
    if sum(len(content) for content, _ in files.values()) > max_bytes:
        raise ChartTooLarge(f"its files hold more than {max_bytes} bytes")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        dirs: set[str] = set()
        for rel in sorted(files):
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                d = "/".join(parts[:depth])
                if d not in dirs:
                    dirs.add(d)
                    tar.addfile(_info(f"{top}/{d}", 0, tarfile.DIRTYPE, 0o755))
            content, executable = files[rel]
            tar.addfile(
                _info(f"{top}/{rel}", len(content), tarfile.REGTYPE, 0o755 if executable else 0o644),
                io.BytesIO(content),
            )
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    data = out.getvalue()
    if len(data) > max_bytes:
        raise ChartTooLarge(f"its archive is larger than {max_bytes} bytes")
    return data


def _info(name: str, size: int, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


@functools.cache
def generic_chart_files() -> dict[str, bytes]:
    """The generic chart's files (relative path -> bytes), as shipped in the kubemart package."""
    root = resources.files("kubemart.sources.git").joinpath(GENERIC_CHART)
    out: dict[str, bytes] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            elif not child.name.startswith("."):
                out[rel] = child.read_bytes()

    walk(root, "")
    return out


def definition_archive(
    name: str,
    version: str,
    chart_meta: dict[str, Any],
    values: dict[str, Any],
    security: dict[str, Any],
    *,
    max_bytes: int,
) -> bytes:
    """The generic chart as the chart of one definition: its Chart.yaml, values and security baked in.

    Security settings (privileged, capabilities) are a file the templates read, not values: an
    AppInstall's values cannot turn them on.
    """
    files = {rel: (content, False) for rel, content in generic_chart_files().items()}  # a fresh dict
    chart = {"apiVersion": "v2", "name": name, "version": version, "type": "application", **chart_meta}
    # JSON is YAML, and json's output depends on nothing but the data (and is ten times faster).
    files["Chart.yaml"] = (_json(chart), False)
    files["values.yaml"] = (_json(values), False)
    files["security.json"] = (json.dumps(security, sort_keys=True).encode(), False)
    return build_archive(name, files, max_bytes=max_bytes)
