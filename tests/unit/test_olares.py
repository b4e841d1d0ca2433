"""Olares apps: their manifest read (Go-templated ones too), mapped to MarketApp fields, read from
archives once per digest; and a render failure on an injected value said as such."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from kubemart.adapters.helm_errors import HelmError, classify, with_injected_values_hint
from kubemart.catalog.entries import app_spec
from kubemart.catalog.olares import olares_fields
from kubemart.catalog.olares_read import ManifestReader
from kubemart.domain import safe_yaml
from kubemart.domain.manifest_template import plain
from kubemart.models.marketapp import AppVersion
from kubemart.sources.archive import olares_manifest
from kubemart.sources.base import ChartFetchError
from support.cluster import BIN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "olares"


def manifest(name: str) -> dict[str, Any]:
    return dict(safe_yaml.load(plain((FIXTURES / "manifests" / f"{name}.yaml").read_text())))


def test_templated_manifests_read_as_the_admins_install() -> None:
    speaches = manifest("speaches")  # nested ifs and a `{{- $env := ... -}}` line
    req = olares_fields(speaches).requirements
    assert req is not None
    assert req.limits is not None
    # The first branch of each if: the admin's install, with a GPU.
    assert (req.memory, req.gpu, req.limits.gpu, req.cpu) == ("6.5Gi", "8Gi", "16Gi", "0.6")
    deps = olares_fields(speaches).dependencies
    assert [(d.app, d.type, d.version) for d in deps] == [("olares", "system", ">=1.12.3-0,<1.12.6")]
    assert (
        "{{" not in plain((FIXTURES / "manifests" / "acestepv2.yaml").read_text()).split("fullDescription")[0]
    )


def test_plain_keeps_text_with_inline_actions_and_untemplated_files() -> None:
    text = "a: 1\ndesc: uses {{ .Release.Name }} here\n"
    assert plain(text) == text
    nested = (
        "{{- if x }}\nA: 1\n{{- if y }}\nB: 1\n{{- else }}\nC: 1\n{{- end }}\n{{- else }}\nD: 1\n{{- end }}\n"
    )
    assert plain(nested) == "A: 1\nB: 1\n"
    assert plain("{{- end }}\n{{- else }}\nx: 1\n") == "x: 1\n"  # unbalanced: nothing breaks


def test_memos_manifest_mapped() -> None:
    found = olares_fields(manifest("memos"))
    assert (found.title, found.developer and found.developer.name, found.home) == (
        "Memos",
        "NeosMemo",
        "https://www.usememos.com/",
    )
    assert found.categories == ["Productivity"]
    assert [(e.name, e.host, e.port) for e in found.entrances] == [("memos", "memos", 5230)]
    assert found.requirements is not None
    assert (found.requirements.memory, found.requirements.disk) == ("512Mi", "128Mi")
    assert found.requirements.architectures == ["amd64", "arm64"]
    assert [link.name for link in found.links] == ["documentation"]


@pytest.mark.parametrize(
    "bad",
    [
        {"metadata": "not a map", "spec": [1], "entrances": "x", "options": {"dependencies": 7}},
        {
            "metadata": {"title": {"a": 1}, "categories": [["x"], "y" * 100]},
            "entrances": [{"name": "e", "port": "80"}],
        },
        {"spec": {"requiredCpu": "lots", "limitedMemory": "1Gi; rm -rf", "license": [{"text": "L" * 500}]}},
        {"entrances": [{"name": f"e{i}", "port": 80 + i} for i in range(100)]},
    ],
)
def test_hostile_manifests_are_cut_to_bounds(bad: dict[str, Any]) -> None:
    spec = app_spec("s", "app", [{"name": "app", "version": "1.0.0", "olaresManifest": bad}])
    assert spec.manifest == "olares"
    assert len(spec.entrances) <= 10
    if spec.requirements is not None:
        assert spec.requirements.cpu is None
        assert spec.requirements.limits is None or spec.requirements.limits.memory is None
    assert all(e.port is None or isinstance(e.port, int) for e in spec.entrances)
    spec.model_validate(spec.wire())  # what is written validates against the bounds


def test_our_annotations_win_over_the_manifest() -> None:
    spec = app_spec(
        "s",
        "memos",
        [
            {
                "name": "memos",
                "version": "1.0.15",
                "annotations": {"kubemart.io/title": "Notes", "kubemart.io/categories": "mine"},
                "olaresManifest": manifest("memos"),
            }
        ],
    )
    assert (spec.title, spec.categories, spec.description) == (
        "Notes",
        ["mine"],
        "Effortlessly craft your impactful content.",
    )


# --- reading archives once per digest ---------------------------------------------------------------


@pytest.fixture(scope="module")
def olares_tgz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pkg")
    subprocess.run([str(BIN / "helm"), "package", str(FIXTURES / "uptimekuma"), "-d", str(out)], check=True)
    return next(out.glob("uptimekuma-*.tgz"))


def plain_tgz(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        data = b"apiVersion: v2\nname: plain\nversion: 1.0.0\n"
        info = tarfile.TarInfo("plain/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


class LocalSource:
    """A Source over files on disk (the seam's contract, no server): counts what it is asked."""

    def __init__(self, archives: dict[str, Path], *, cached: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.archives, self.cached_digests = archives, set(cached)
        self.fetched: list[str] = []
        self.failing = False
        self.active = self.most_active = 0

    async def snapshot(self, since: Any) -> Any:
        raise NotImplementedError

    def cached(self, version: AppVersion) -> Path | None:
        return self.archives[str(version.digest)] if version.digest in self.cached_digests else None

    async def fetch(self, version: AppVersion) -> Path:
        self.fetched.append(str(version.digest))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await asyncio.sleep(0.01)
            if self.failing:
                raise ChartFetchError("ChartDownloadFailed", "no", retryable=True)
            return self.archives[str(version.digest)]
        finally:
            self.active -= 1


def charts_of(
    digests: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [
            {
                "name": name,
                "version": "1.0.0",
                "digest": d,
                "urls": [f"{name}.tgz"],
                "annotations": annotations or {},
            }
        ]
        for name, d in digests.items()
    }


def test_a_plain_repository_downloads_nothing(olares_tgz: Path, tmp_path: Path) -> None:
    digests = {f"app{i}": f"{i:064x}" for i in range(200)}
    source = LocalSource(dict.fromkeys(digests.values(), plain_tgz(tmp_path / "p.tgz")))
    stats = asyncio.run(ManifestReader().enrich(source, charts_of(digests), every=False))
    assert (source.fetched, stats.read) == ([], 0)


def test_opted_in_source_reads_each_digest_once_with_bounded_concurrency(
    olares_tgz: Path, tmp_path: Path
) -> None:
    plain_path = plain_tgz(tmp_path / "p.tgz")
    digests = {f"app{i}": f"{i:064x}" for i in range(20)} | {"uptimekuma": "f" * 64}
    archives = dict.fromkeys(digests.values(), plain_path) | {"f" * 64: olares_tgz}
    source, reader = LocalSource(archives), ManifestReader(concurrency=3)
    charts = charts_of(digests)
    stats = asyncio.run(reader.enrich(source, charts, every=True))
    assert (len(source.fetched), stats.read, source.most_active) == (21, 21, 3)
    assert charts["uptimekuma"][0]["olaresManifest"]["metadata"]["title"] == "Uptime Kuma"
    assert "fullDescription" not in charts["uptimekuma"][0]["olaresManifest"]["spec"]  # slimmed
    assert "olaresManifest" not in charts["app0"][0]
    # A re-sync (a new index with the same digests) reads nothing again, and still maps the manifest.
    again = charts_of(digests)
    stats = asyncio.run(reader.enrich(source, again, every=True))
    assert (len(source.fetched), stats.remembered) == (21, 21)
    assert app_spec("s", "uptimekuma", again["uptimekuma"]).title == "Uptime Kuma"


def test_signal_annotation_or_cached_archive_are_read(olares_tgz: Path) -> None:
    source = LocalSource(
        {"a" * 64: olares_tgz, "b" * 64: olares_tgz, "c" * 64: olares_tgz}, cached={"b" * 64}
    )
    charts = charts_of({"signalled": "a" * 64}, {"kubemart.io/manifest": "olares"}) | charts_of(
        {"installed": "b" * 64, "other": "c" * 64}
    )
    asyncio.run(ManifestReader().enrich(source, charts, every=False))
    assert sorted(source.fetched) == ["a" * 64, "b" * 64]
    assert "olaresManifest" in charts["installed"][0]
    assert "olaresManifest" not in charts["other"][0]


def test_failed_downloads_are_tried_again_later(olares_tgz: Path) -> None:
    source, reader = LocalSource({"a" * 64: olares_tgz}), ManifestReader()
    source.failing = True
    assert asyncio.run(reader.enrich(source, charts_of({"x": "a" * 64}), every=True)).failed == 1
    source.failing = False
    charts = charts_of({"x": "a" * 64})
    assert asyncio.run(reader.enrich(source, charts, every=True)).read == 1
    assert "olaresManifest" in charts["x"][0]


def test_a_git_sources_manifest_is_kept(olares_tgz: Path) -> None:
    source = LocalSource({"a" * 64: olares_tgz})
    charts = charts_of({"x": "a" * 64})
    charts["x"][0]["olaresManifest"] = {"metadata": {"title": "From git"}}
    asyncio.run(ManifestReader().enrich(source, charts, every=True))
    assert source.fetched == []
    assert charts["x"][0]["olaresManifest"]["metadata"]["title"] == "From git"


def test_archive_reader_reads_the_templated_manifest(olares_tgz: Path) -> None:
    found = olares_manifest(olares_tgz)
    assert found is not None
    assert found["metadata"]["appid"] == "uptimekuma"


# --- render failures on injected values ------------------------------------------------------------


def test_render_failure_on_an_injected_value_is_named() -> None:
    stderr = (
        'Error: template: uptimekuma/templates/uptimekuma.yaml:50:29: executing "uptimekuma/templates/'
        'uptimekuma.yaml" at <.Values.userspace.appData>: nil pointer evaluating interface {}.appData\n'
    )
    err = with_injected_values_hint(classify(stderr, operation="install"))
    assert (err.reason, err.retryable) == ("InjectedValuesMissing", False)
    assert "spec.values" in err.message
    assert "userspace" in err.message
    other = HelmError("ChartRenderFailed", "template: x at <.Values.image.tag>: nil pointer", retryable=False)
    assert with_injected_values_hint(other) is other


def test_what_is_remembered_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubemart.catalog import olares_read

    huge = {
        "metadata": {"title": "t" * 100_000, "categories": ["c"] * 1000, "x": {"a": {"b": {"c": {"d": 1}}}}},
        "spec": {"fullDescription": "f" * 100_000, "developer": "d"},
        "entrances": [{"name": "e"}] * 1000,
    }
    slimmed = olares_read.slim(huge)
    assert len(slimmed["metadata"]["title"]) == 2048
    assert len(slimmed["metadata"]["categories"]) == len(slimmed["entrances"]) == 20
    assert slimmed["spec"] == {"developer": "d"}
    monkeypatch.setattr(olares_read, "MAX_REMEMBERED_BYTES", 10_000)
    reader = ManifestReader()
    for i in range(10):
        reader._remember(f"{i:064x}", slimmed)
    assert reader._bytes <= 10_000
    assert len(reader._known) == reader._bytes // len(json.dumps(slimmed))
