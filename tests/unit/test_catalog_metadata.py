"""Catalog metadata from what real charts declare: Chart.yaml fields, Artifact Hub's and Bitnami's
annotations, ours, and the keyword-predicted category (catalog.metadata, through catalog.entries)."""

from __future__ import annotations

import tarfile
from typing import Any

import pytest
import yaml

from kubemart.catalog.entries import app_spec, catalog_from_charts
from kubemart.models.marketapp import MAX_LINKS, MAX_MAINTAINERS
from kubemart.sources.archive import olares_manifest
from support.realcharts import RealChart, real_charts

CHARTS = {c.app: c for c in real_charts()}
needs_corpus = pytest.mark.skipif(not CHARTS, reason="the real-chart corpus (shared/realcharts) is not here")


def chart_yaml(chart: RealChart) -> dict[str, Any]:
    with tarfile.open(chart.archive) as tar:
        member = tar.extractfile(f"{chart.app}/Chart.yaml")
        assert member is not None
        return dict(yaml.safe_load(member.read()))


def entry(**fields: Any) -> dict[str, Any]:
    return {"name": "app", "version": "1.0.0", "digest": "ab" * 32, "urls": ["app-1.0.0.tgz"], **fields}


# What each real chart declares, read as `helm repo index` puts Chart.yaml into an index entry.
EXPECTED = {
    # keywords argoproj, argocd, gitops: predicted, as Artifact Hub predicts from keywords
    "argo-cd": {"categories": ["integration-delivery"], "license": None, "maintainers": ["argoproj"]},
    "ingress-nginx": {
        "categories": ["networking"],
        "license": None,
        "maintainers": ["cpanato", "Gacko", "strongjz", "tao12345666333"],
    },
    # artifacthub.io/license and artifacthub.io/links
    "kube-prometheus-stack": {"categories": ["monitoring-logging"], "license": "Apache-2.0"},
    # Bitnami's `licenses` annotation
    "postgresql": {"categories": ["database"], "license": "Apache-2.0"},
    "redis": {"categories": ["database"], "license": "Apache-2.0"},
    # no keyword, no annotation: no category is made up
    "podinfo": {"categories": [], "license": None, "maintainers": ["stefanprodan"]},
    # Olares apps: everything is in OlaresManifest.yaml (tested with it below)
    "excalidraw": {"categories": [], "license": None, "maintainers": []},
    "memos": {"categories": [], "license": None, "maintainers": []},
}


@needs_corpus
@pytest.mark.parametrize("app", sorted(EXPECTED))
def test_real_charts_metadata_from_their_chart_yaml(app: str) -> None:
    head = chart_yaml(CHARTS[app])
    spec = app_spec("real", app, [head])
    want = EXPECTED[app]
    assert spec.categories == want["categories"]
    assert spec.license == want["license"]
    if "maintainers" in want:
        assert [m.name for m in spec.maintainers] == want["maintainers"]
    assert spec.deprecated is None
    assert spec.prerelease is None  # ingress-nginx says artifacthub.io/prerelease: "false"
    sources = head.get("sources") or []
    assert {link.url for link in spec.links} >= set(sources)


@needs_corpus
def test_artifact_hub_links_and_maintainers_of_kube_prometheus_stack() -> None:
    spec = app_spec("real", "kube-prometheus-stack", [chart_yaml(CHARTS["kube-prometheus-stack"])])
    assert [(link.name, link.url) for link in spec.links] == [
        ("Chart Source", "https://github.com/prometheus-community/helm-charts"),
        ("Upstream Project", "https://github.com/prometheus-operator/kube-prometheus"),
        (
            "Upgrade Process",
            "https://github.com/prometheus-community/helm-charts/blob/main/charts/kube-prometheus-stack/"
            "README.md#upgrading-chart",
        ),
    ]  # its `sources` repeat two of them: not listed twice
    first = spec.maintainers[0]
    assert (first.name, first.email, first.url) == (
        "andrewgkew",
        "andrew@quadcorps.co.uk",
        "https://github.com/andrewgkew",
    )


@needs_corpus
@pytest.mark.parametrize(
    ("app", "title", "categories", "entrance"),
    [("memos", "Memos", ["Productivity"], ("memos", 5230)), ("excalidraw", "Excalidraw", None, None)],
)
def test_real_olares_charts_read_with_their_manifest(
    app: str, title: str, categories: list[str] | None, entrance: tuple[str, int] | None
) -> None:
    head = chart_yaml(CHARTS[app]) | {"olaresManifest": olares_manifest(CHARTS[app].archive)}
    spec = app_spec("olares", app, [head])
    assert (spec.title, spec.manifest) == (title, "olares")
    assert spec.categories, "an Olares app declares its categories in the manifest"
    if categories is not None:
        assert spec.categories == categories  # "Productivity_v112" without Olares' version suffix
    assert spec.requirements is not None
    assert spec.requirements.cpu == "0.5"
    assert spec.requirements.limits is not None
    assert spec.requirements.limits.cpu == "3"
    assert [d.app for d in spec.dependencies] == ["olares"]
    if entrance is not None:
        assert [(e.name, e.port) for e in spec.entrances] == [entrance]


def test_declared_categories_win_over_the_predicted_one() -> None:
    keywords = {"keywords": ["database"]}
    ah = app_spec("s", "app", [entry(annotations={"artifacthub.io/category": "storage"}, **keywords)])
    assert ah.categories == ["storage"]
    bitnami = app_spec("s", "app", [entry(annotations={"category": "Database"}, **keywords)])
    assert bitnami.categories == ["Database"]
    ours = app_spec(
        "s",
        "app",
        [
            entry(
                annotations={"kubemart.io/categories": "a,b", "artifacthub.io/category": "storage"},
                **keywords,
            )
        ],
    )
    assert ours.categories == ["a", "b"]
    skip = app_spec(
        "s", "app", [entry(annotations={"artifacthub.io/category": "skip-prediction"}, **keywords)]
    )
    assert skip.categories == []
    assert app_spec("s", "app", [entry(**keywords)]).categories == ["database"]


def test_title_license_flags_from_annotations() -> None:
    spec = app_spec(
        "s",
        "app",
        [
            entry(
                deprecated=True,
                annotations={
                    "artifacthub.io/displayName": "My App",
                    "artifacthub.io/license": "MIT",
                    "artifacthub.io/prerelease": "true",
                },
            )
        ],
    )
    assert (spec.title, spec.license, spec.deprecated, spec.prerelease) == ("My App", "MIT", True, True)
    ours = app_spec(
        "s", "app", [entry(annotations={"kubemart.io/title": "Ours", "artifacthub.io/displayName": "x"})]
    )
    assert ours.title == "Ours"
    assert app_spec("s", "app", [entry(deprecated="yes")]).deprecated is None


def test_artifact_hub_maintainers_annotation_when_chart_yaml_has_none() -> None:
    text = (
        "- name: Ann\n  email: ann@example.com\n- name: Bob\n  email: not-an-email\n- 42\n- {email: x@y.z}\n"
    )
    spec = app_spec("s", "app", [entry(annotations={"artifacthub.io/maintainers": text})])
    assert [(m.name, m.email) for m in spec.maintainers] == [("Ann", "ann@example.com"), ("Bob", None)]


@pytest.mark.parametrize(
    "links",
    [
        "a: &a [*a]",  # a recursive alias
        "- name: x\n  url: " + "h" * 20_000,  # longer than an annotation is read
        "[unclosed",
        "just text",
        "- {name: evil, url: 'javascript:alert(1)'}\n- {name: '', url: 'https://x.example'}",
    ],
)
def test_hostile_links_are_left_out(links: str) -> None:
    spec = app_spec("s", "app", [entry(annotations={"artifacthub.io/links": links})])
    assert spec.links == []


def test_lists_are_capped_and_strings_cut() -> None:
    many = [{"name": f"m{i}", "email": f"m{i}@x.org", "url": f"https://x.org/{i}"} for i in range(50)]
    sources = [f"https://x.org/src/{i}" for i in range(50)]
    spec = app_spec(
        "s",
        "app",
        [entry(maintainers=many, sources=sources, annotations={"artifacthub.io/license": "L" * 500})],
    )
    assert len(spec.maintainers) == MAX_MAINTAINERS
    assert len(spec.links) == MAX_LINKS
    assert spec.license is not None
    assert len(spec.license) <= 128
    # and the whole catalog entry is still writable
    assert catalog_from_charts("s", {"app": [entry(maintainers=many, sources=sources)]}).entries
