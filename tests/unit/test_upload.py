"""Uploaded charts without a cluster: the archive checks (untrusted bytes), the plugin's packaging,
the storage names, and stored Secrets read as chart versions."""

from __future__ import annotations

import base64
import gzip
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubemart.catalog.entries import catalog_from_charts
from kubemart.domain.chart_archive import ArchiveLimits, InvalidChart, inspect
from kubemart.domain.upload_storage import secret_body, secret_name
from kubemart.plugin.api import PluginError
from kubemart.plugin.packaging import read_chart
from kubemart.sources.upload.source import revision_of
from kubemart.sources.upload.stored import assemble, read_stored
from support.cluster import BIN

HELLO = Path(__file__).parents[1] / "charts" / "hello"
CHART_YAML = b"apiVersion: v2\nname: demo\nversion: 1.2.3\ndescription: A demo\n"


def tgz(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, target: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, data


def test_a_well_formed_archive_is_read() -> None:
    data = tgz([member("demo/Chart.yaml", CHART_YAML), member("demo/templates/cm.yaml", b"kind: ConfigMap")])
    chart = inspect(data)
    assert (chart.name, chart.version, chart.metadata["description"]) == ("demo", "1.2.3", "A demo")
    assert chart.size == len(data)
    assert len(chart.digest) == 64


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ([member("/demo/Chart.yaml", CHART_YAML)], "paths must be relative"),
        ([member("demo/Chart.yaml", CHART_YAML), member("demo/../../etc/x", b"x")], "without '..'"),
        ([member("demo/Chart.yaml", CHART_YAML), member("other/x", b"x")], "more than one top-level"),
        (
            [member("demo/Chart.yaml", CHART_YAML), member("demo/l", kind=tarfile.SYMTYPE, target="/etc")],
            "a link",
        ),
        (
            [member("demo/Chart.yaml", CHART_YAML), member("demo/h", kind=tarfile.LNKTYPE, target="x")],
            "a link",
        ),
        ([member("demo/values.yaml", b"a: 1")], "no <chart>/Chart.yaml"),
        ([member("demo/Chart.yaml", b"name: Demo_App\nversion: 1.0.0\n")], "not one DNS label"),
        ([member("demo/Chart.yaml", b"name: demo\nversion: latest\n")], "not a semantic version"),
        ([member("demo/Chart.yaml", b"a: &a [*a]\n")], "Chart.yaml cannot be read"),
        ([member("demo/Chart.yaml", b"- a list\n")], "not a mapping"),
    ],
)
def test_an_archive_that_is_not_a_plain_chart_is_refused(
    members: list[tuple[tarfile.TarInfo, bytes]], says: str
) -> None:
    with pytest.raises(InvalidChart) as caught:
        inspect(tgz(members))
    assert says in str(caught.value)


def test_a_gzip_bomb_stops_at_the_decompressed_bound_not_at_its_end() -> None:
    # 64 MiB of zeros compress to about 64 KiB: declared and counted before a byte is read.
    zeros = tgz([member("demo/Chart.yaml", CHART_YAML), member("demo/zeros", b"\0" * (64 * 1024 * 1024))])
    assert len(zeros) < 200 * 1024
    with pytest.raises(InvalidChart, match="decompressed"):
        inspect(zeros, ArchiveLimits(max_file_bytes=100 * 1024 * 1024))
    with pytest.raises(InvalidChart, match=r"demo/zeros is 64.0 MiB decompressed, over 5.0 MiB"):
        inspect(zeros)


def test_too_many_files_and_too_many_bytes_are_refused() -> None:
    many = tgz([member("demo/Chart.yaml", CHART_YAML)] + [member(f"demo/f{i}", b"x") for i in range(30)])
    with pytest.raises(InvalidChart, match="more than 10 files"):
        inspect(many, ArchiveLimits(max_files=10))
    with pytest.raises(InvalidChart, match=r"over the 1\.0 KiB an uploaded chart may be"):
        inspect(os.urandom(2048), ArchiveLimits(max_compressed_bytes=1024))
    with pytest.raises(InvalidChart, match="not a gzipped tar file"):
        inspect(b"not a tarball")


def test_a_directory_is_packaged_deterministically_with_helmignore(tmp_path: Path) -> None:
    chart = tmp_path / "src"
    shutil.copytree(HELLO, chart)
    (chart / ".helmignore").write_text("*.bak\nsecret/\n")
    (chart / "old.bak").write_text("x")
    (chart / "secret").mkdir()
    (chart / "secret" / "key").write_text("x")
    (chart / ".git").mkdir()
    (chart / ".git" / "HEAD").write_text("ref")
    found, data = read_chart(chart)
    again, data_again = read_chart(chart)
    assert data == data_again  # the same directory is the same archive: re-uploading changes nothing
    assert (found.name, found.version, found.digest) == ("hello", "0.1.0", again.digest)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert names == sorted(names)
    assert all(n.startswith("hello/") for n in names)  # named after the chart, not the directory
    assert not any(n.endswith((".bak", "/key", "/HEAD")) for n in names)
    assert "hello/.helmignore" in names


def test_what_helm_package_makes_is_read_as_it_is(tmp_path: Path) -> None:
    subprocess.run(
        [str(BIN / "helm"), "package", str(HELLO), "-d", str(tmp_path)], check=True, capture_output=True
    )
    found, data = read_chart(tmp_path / "hello-0.1.0.tgz")
    assert (found.name, found.version) == ("hello", "0.1.0")
    assert data == (tmp_path / "hello-0.1.0.tgz").read_bytes()


def test_packaging_refuses_symlinks_and_what_is_not_a_chart(tmp_path: Path) -> None:
    chart = tmp_path / "linked"
    shutil.copytree(HELLO, chart)
    (chart / "templates" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(PluginError, match="templates/passwd is a symlink"):
        read_chart(chart)
    with pytest.raises(PluginError, match=r"has no Chart\.yaml"):
        read_chart(tmp_path)
    with pytest.raises(PluginError, match=r"neither a chart directory nor a \.tgz"):
        read_chart(tmp_path / "missing")


def test_storage_names_are_dns_names_unique_per_exact_version() -> None:
    assert secret_name("demo", "1.2.3") == "chart-demo-1.2.3"
    plus, upper, lower = (secret_name("demo", v) for v in ("1.0.0+build.1", "1.0.0-RC1", "1.0.0-rc1"))
    assert plus.startswith("chart-demo-1.0.0-build.1-")
    assert lower == "chart-demo-1.0.0-rc1"
    assert upper != lower


def stored(name: str, data: bytes, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created, "uid": name, "resourceVersion": "1"},
        "data": {"chart.tgz": base64.b64encode(data).decode()},
    }


def test_stored_secrets_become_chart_versions_and_broken_ones_notes() -> None:
    good = tgz([member("demo/Chart.yaml", CHART_YAML)])
    body = secret_body(inspect(good), good, "team-a")
    assert body["metadata"]["labels"] == {
        "kubemart.io/upload": "chart",
        "kubemart.io/watch": "upload",
        "kubemart.io/chart": "demo",
    }
    body["metadata"] |= {"creationTimestamp": "2026-01-01T00:00:00Z", "uid": "u1", "resourceVersion": "7"}
    limits = ArchiveLimits()
    items = [
        read_stored(body, limits),
        read_stored(stored("chart-demo-copy", good, created="2026-02-01T00:00:00Z"), limits),
        read_stored(stored("chart-broken", b"garbage"), limits),
        read_stored({"metadata": {"name": "chart-empty"}, "data": {}}, limits),
        read_stored(
            {"metadata": {"name": "chart-big"}, "data": {"chart.tgz": "A" * (2 * 1024 * 1024)}}, limits
        ),
    ]
    charts, notes = assemble(items)
    assert list(charts) == ["demo"]
    [entry] = charts["demo"]
    assert entry["urls"] == ["chart-demo-1.2.3"]  # the first stored wins
    assert entry["digest"] == inspect(good).digest
    assert len(notes) == 4
    assert any(
        n.startswith("Secret chart-broken holds no usable chart: the archive is not a gzipped") for n in notes
    )
    assert "Secret chart-demo-copy holds demo 1.2.3, which Secret chart-demo-1.2.3 stored first" in notes[-1]
    assert any("no chart.tgz key" in n for n in notes)
    assert any("chart-big" in n and "over 1008 KiB" in n for n in notes)
    catalog = catalog_from_charts("uploads", charts)
    assert catalog.entries["uploads.demo"].spec.versions[0].digest == entry["digest"]


def test_the_revision_changes_with_any_write_and_only_then() -> None:
    metas = [
        {"name": "a", "uid": "1", "resourceVersion": "5"},
        {"name": "b", "uid": "2", "resourceVersion": "6"},
    ]
    same = revision_of("ns", list(reversed(metas)))
    assert revision_of("ns", metas) == same
    assert revision_of("other", metas) != same
    assert revision_of("ns", [metas[0], {**metas[1], "resourceVersion": "9"}]) != same
    assert revision_of("ns", metas[:1]) != same


def test_chart_yaml_is_what_the_catalog_reads(tmp_path: Path) -> None:
    chart = tmp_path / "annotated"
    shutil.copytree(HELLO, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["annotations"] = {"kubemart.io/title": "Hello World", "kubemart.io/categories": "tools"}
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    _, data = read_chart(chart)
    charts, _ = assemble([read_stored(stored("chart-hello-0.1.0", data), ArchiveLimits())])
    spec = catalog_from_charts("uploads", charts).entries["uploads.hello"].spec
    assert spec.title == "Hello World"
    assert spec.categories == ["tools"]
