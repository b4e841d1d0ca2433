"""`kubectl market upload`'s input: a chart directory packaged as `helm package` would, or a .tgz.

A directory is packaged in Python (the plugin never runs helm): its files under `<chart name>/`,
`.helmignore` honoured (gitignore syntax, read with pathspec), `.git` left out, symlinks refused
(helm would follow them out of the directory). The archive is deterministic (sorted, no times, no
owners), so uploading an unchanged directory again stores the same bytes and changes nothing.
Whatever the input, the archive then goes through `domain.chart_archive.inspect`, the operator's own
checks, before anything is sent.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pathspec

from kubemart.domain import chart_archive
from kubemart.domain.chart_archive import ArchiveLimits, ChartArchive, InvalidChart, human_size
from kubemart.plugin.api import PluginError


def read_chart(path: Path, limits: ArchiveLimits | None = None) -> tuple[ChartArchive, bytes]:
    """The checked chart and the archive's bytes; PluginError says what is wrong and what to do."""
    limits = limits or ArchiveLimits()
    try:
        if path.is_dir():
            data = package_directory(path, limits)
        elif path.is_file():
            if path.stat().st_size > limits.max_compressed_bytes:
                raise InvalidChart(
                    f"the archive is {human_size(path.stat().st_size)}, over the "
                    f"{human_size(limits.max_compressed_bytes)} an uploaded chart may be (one Secret holds at "
                    "most 1 MiB); publish a chart that big to a Helm or OCI repository"
                )
            data = path.read_bytes()
        else:
            raise PluginError(f"{path} is neither a chart directory nor a .tgz file")
        return chart_archive.inspect(data, limits), data
    except InvalidChart as exc:
        raise PluginError(f"{path} cannot be uploaded: {exc}") from None
    except OSError as exc:
        raise PluginError(f"{path} cannot be read: {exc.strerror or exc}") from None


def package_directory(root: Path, limits: ArchiveLimits) -> bytes:
    """The directory as a chart archive (`<name>/...`, name from Chart.yaml). Raises InvalidChart."""
    if not (root / "Chart.yaml").is_file():
        raise InvalidChart("the directory has no Chart.yaml; is it a Helm chart?")
    top = _chart_name(root)
    ignore = _ignore_spec(root)
    buffer = io.BytesIO()
    total = 0
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel in _files(root, ignore):
            full = root / rel
            size = full.stat().st_size
            total += size
            if total > limits.max_total_bytes:
                raise InvalidChart(f"the directory holds over {limits.max_total_bytes // (1024 * 1024)} MiB")
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mode, info.mtime = size, 0o644, 0
            with full.open("rb") as fh:
                tar.addfile(info, fh)
            if buffer.tell() > limits.max_compressed_bytes:
                break  # inspect() says how big is too big
    return buffer.getvalue()


def _chart_name(root: Path) -> str:
    # The archive's directory is the chart's name, as with `helm package`; inspect() checks the rest.
    chart = chart_archive.read_chart_yaml(
        (root / "Chart.yaml").read_bytes()[: chart_archive.MAX_CHART_YAML + 1]
    )
    return chart[0]


def _ignore_spec(root: Path) -> pathspec.GitIgnoreSpec:
    lines = [".git/"]
    helmignore = root / ".helmignore"
    if helmignore.is_file():
        lines += helmignore.read_text(errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _files(root: Path, ignore: pathspec.GitIgnoreSpec) -> list[str]:
    """Files to package, relative and sorted; raises InvalidChart for a symlink that is not ignored."""
    out: list[str] = []
    for current, dirs, names in os.walk(root, followlinks=False):
        base = Path(current).relative_to(root)
        for d in sorted(dirs):
            rel = (base / d).as_posix()
            if ignore.match_file(rel + "/"):
                dirs.remove(d)
            elif (Path(current) / d).is_symlink():
                raise InvalidChart(f"{rel} is a symlink; copy what it points to into the chart instead")
        for n in names:
            rel = (base / n).as_posix()
            if ignore.match_file(rel):
                continue
            if (Path(current) / n).is_symlink():
                raise InvalidChart(f"{rel} is a symlink; copy what it points to into the chart instead")
            out.append(rel)
    return sorted(out)
