"""Catalog entries: a source's chart versions to MarketApp specs, cut to bounds; object names; content hashes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kubemart.catalog.entries import (
    MAX_APP_NAME,
    MAX_NOTE,
    MAX_VERSIONS,
    Catalog,
    CatalogTooLarge,
    app_spec,
    catalog_from_charts,
    content_hash,
)
from kubemart.domain.catalog import object_name
from kubemart.models import marketapp as bounds
from kubemart.models.marketapp import Developer, MarketAppSpec, Price, Requirements

# Kubernetes' IsDNS1123Subdomain, which every cluster-scoped object name must satisfy.
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def entry(version: Any, **fields: Any) -> dict[str, Any]:
    """One version of a chart as index.yaml lists it."""
    return {"version": version, **fields}


def annotated(**annotations: str) -> list[dict[str, Any]]:
    """A one-version chart whose newest stable version carries these kubemart.io/ annotations."""
    return [
        entry("1.0.0", annotations={f"kubemart.io/{k.replace('_', '-')}": v for k, v in annotations.items()})
    ]


# --- app_spec: metadata -----------------------------------------------------------------------------


CHART = [
    entry(
        "1.0.0",
        description="old description",
        icon="https://x/old.png",
        home="https://old.example",
        keywords=["old"],
        appVersion="1.0",
        annotations={"kubemart.io/title": "Old Title"},
    ),
    entry(
        "1.2.0",
        description="A web server",
        icon="https://x/nginx.png",
        home="https://nginx.org",
        keywords=["web", "proxy"],
        appVersion="1.25.3",
        created="2024-05-01T00:00:00Z",
        digest="abc123",
        urls=["https://charts.example/nginx-1.2.0.tgz"],
        annotations={"kubemart.io/title": "NGINX", "kubemart.io/categories": "Web, Networking"},
    ),
    entry("2.0.0-rc.1", description="prerelease description", annotations={"kubemart.io/title": "Next"}),
    entry("1.1.0", description="middle"),
]


def test_app_spec_takes_metadata_from_newest_stable_version() -> None:
    spec = app_spec("main", "nginx", CHART)
    assert spec.source == "main"
    assert spec.app == "nginx"
    assert spec.latest_version == "1.2.0"
    assert spec.title == "NGINX"
    assert spec.description == "A web server"
    assert spec.icon == "https://x/nginx.png"
    assert spec.home == "https://nginx.org"
    assert spec.keywords == ["web", "proxy"]
    assert spec.categories == ["Web", "Networking"]
    assert spec.price is None
    assert spec.developer is None
    assert spec.requirements is None


def test_app_spec_lists_every_version_newest_first_with_prereleases() -> None:
    spec = app_spec("main", "nginx", CHART)
    assert [v.version for v in spec.versions] == ["2.0.0-rc.1", "1.2.0", "1.1.0", "1.0.0"]
    newest_stable = spec.versions[1]
    assert newest_stable.app_version == "1.25.3"
    assert newest_stable.created == "2024-05-01T00:00:00Z"
    assert newest_stable.digest == "abc123"
    assert newest_stable.urls == ["https://charts.example/nginx-1.2.0.tgz"]
    assert spec.versions[3].urls == []
    assert spec.versions[3].digest is None


@pytest.mark.parametrize(
    ("entries", "latest", "title"),
    [
        pytest.param(
            [entry("1.0.0-beta.1", annotations={"kubemart.io/title": "Beta"}), entry("1.0.0-alpha.1")],
            "1.0.0-beta.1",
            "Beta",
            id="prerelease-only chart uses newest prerelease",
        ),
        pytest.param([entry("1.0.0+build.5")], "1.0.0+build.5", "app", id="build metadata is stable"),
        pytest.param(
            [entry("1.0.0"), entry("1.0.1-rc.1+build.1")], "1.0.0", "app", id="prerelease with build skipped"
        ),
        pytest.param([entry("v2.1.0"), entry("2.0.0")], "v2.1.0", "app", id="v prefix kept as spelled"),
        pytest.param([entry("1.0"), entry("0.9.9")], "1.0", "app", id="partial version accepted"),
        pytest.param([entry(1.5), entry("1.4.0")], "1.5", "app", id="YAML float version read as text"),
        pytest.param(
            [entry("latest"), entry("1.0.0"), entry(None), {"name": "no version"}],
            "1.0.0",
            "app",
            id="junk versions dropped",
        ),
        pytest.param(
            [entry("1.0.0", annotations="not a mapping")],
            "1.0.0",
            "app",
            id="annotations not a mapping ignored",
        ),
        pytest.param([entry("1.0.0", annotations=None)], "1.0.0", "app", id="null annotations"),
        pytest.param(
            [entry("1.0.0", annotations={"kubemart.io/title": ""})],
            "1.0.0",
            "app",
            id="empty title falls back",
        ),
    ],
)
def test_app_spec_latest_version_and_title(entries: list[dict[str, Any]], latest: str, title: str) -> None:
    spec = app_spec("src", "app", entries)
    assert spec.latest_version == latest
    assert spec.title == title


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([], id="no versions"),
        pytest.param([entry("latest"), entry("stable")], id="only junk versions"),
        pytest.param([{"name": "x"}], id="versions without a version field"),
    ],
)
def test_app_spec_without_a_valid_version_raises(entries: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="no version is valid semver"):
        app_spec("src", "app", entries)


def test_app_spec_caps_versions_at_max_newest_first() -> None:
    entries = [entry(f"1.{minor}.0") for minor in range(MAX_VERSIONS + 15)]
    spec = app_spec("src", "app", entries)
    assert len(spec.versions) == MAX_VERSIONS
    expected = [f"1.{minor}.0" for minor in reversed(range(15, MAX_VERSIONS + 15))]
    assert [v.version for v in spec.versions] == expected
    assert spec.latest_version == f"1.{MAX_VERSIONS + 14}.0"


def test_app_spec_exactly_max_versions_keeps_all() -> None:
    spec = app_spec("src", "app", [entry(f"0.0.{p}") for p in range(MAX_VERSIONS)])
    assert len(spec.versions) == MAX_VERSIONS


# --- app_spec: annotations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("web", ["web"], id="one"),
        pytest.param("web,databases", ["web", "databases"], id="comma list"),
        pytest.param(" web ,  databases , ", ["web", "databases"], id="spaces and trailing comma"),
        pytest.param(",,", [], id="only commas"),
        pytest.param("Developer Tools", ["Developer Tools"], id="space inside a category"),
    ],
)
def test_categories_annotation(text: str, expected: list[str]) -> None:
    assert app_spec("s", "a", annotated(categories=text)).categories == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("4.99 USD", Price(amount="4.99", currency="USD"), id="amount and currency"),
        pytest.param("10 EUR", Price(amount="10", currency="EUR"), id="whole amount"),
        pytest.param("  0.5   gbp ", Price(amount="0.5", currency="GBP"), id="spaces and lowercase currency"),
        pytest.param("0.00000001 BTC", Price(amount="0.00000001", currency="BTC"), id="eight decimals"),
    ],
)
def test_price_annotation(text: str, expected: Price) -> None:
    assert app_spec("s", "a", annotated(price=text)).price == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("4.99", "is not '<amount> <currency>'", id="no currency"),
        pytest.param("USD 4.99", "is not '<amount> <currency>'", id="currency first"),
        pytest.param("$4.99", "is not '<amount> <currency>'", id="symbol"),
        pytest.param("4,99 EUR", "is not '<amount> <currency>'", id="decimal comma"),
        pytest.param("-1 USD", "is not '<amount> <currency>'", id="negative"),
        pytest.param("1.123456789 USD", "is not '<amount> <currency>'", id="nine decimals"),
        pytest.param("4.99 DOLLARS", "is not '<amount> <currency>'", id="currency not three letters"),
        pytest.param("free", "is not '<amount> <currency>'", id="a word"),
        pytest.param("0 USD", "is zero", id="zero"),
        pytest.param("0.00 EUR", "is zero", id="zero with decimals"),
    ],
)
def test_bad_price_annotation_raises(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        app_spec("s", "a", annotated(price=text))


def test_empty_price_annotation_means_free() -> None:
    assert app_spec("s", "a", annotated(price="")).price is None


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({"developer": "Acme"}, Developer(name="Acme"), id="name only"),
        pytest.param(
            {"developer": "Acme", "developer_public_key": "MCowBQYDK2VwAyEA"},
            Developer(name="Acme", public_key="MCowBQYDK2VwAyEA"),
            id="name and public key",
        ),
        pytest.param({"developer_public_key": "MCowBQYDK2VwAyEA"}, None, id="key without name ignored"),
        pytest.param({"developer": ""}, None, id="empty name"),
        pytest.param(
            {"developer": "Acme", "developer_public_key": ""}, Developer(name="Acme"), id="empty key"
        ),
    ],
)
def test_developer_annotations(annotations: dict[str, str], expected: Developer | None) -> None:
    assert app_spec("s", "a", annotated(**annotations)).developer == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "{cpu: 100m, memory: 256Mi, disk: 1Gi, architectures: [amd64, arm64]}",
            Requirements(cpu="100m", memory="256Mi", disk="1Gi", architectures=["amd64", "arm64"]),
            id="YAML flow mapping",
        ),
        pytest.param(
            '{"cpu": "500m", "memory": "1Gi"}',
            Requirements(cpu="500m", memory="1Gi"),
            id="JSON object",
        ),
        pytest.param(
            "cpu: 2\nmemory: 4Gi\n", Requirements(cpu="2", memory="4Gi"), id="block mapping, number"
        ),
        pytest.param("{cpu: 0.5}", Requirements(cpu="0.5"), id="fractional cpu as text"),
        pytest.param("{arch: amd64}", Requirements(architectures=["amd64"]), id="arch alias as text"),
        pytest.param(
            "{architectures: 'amd64, arm64'}", Requirements(architectures=["amd64", "arm64"]), id="comma text"
        ),
        pytest.param("{}", Requirements(), id="empty mapping"),
        pytest.param("{gpu: 1}", Requirements(), id="unknown keys ignored"),
    ],
)
def test_requirements_annotation(text: str, expected: Requirements) -> None:
    assert app_spec("s", "a", annotated(requirements=text)).requirements == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{cpu: 100m", "requirements are not valid YAML", id="unclosed flow mapping"),
        pytest.param("[cpu, memory]", "requirements must be a mapping", id="a list"),
        pytest.param("100m", "requirements must be a mapping", id="a scalar"),
        pytest.param("cpu: [1\n", "requirements are not valid YAML", id="broken block"),
    ],
)
def test_bad_requirements_annotation_raises(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        app_spec("s", "a", annotated(requirements=text))
    assert "\n" not in str(err.value)


# --- object_name ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "app", "expected"),
    [
        pytest.param("main", "nginx", "main.nginx", id="plain"),
        pytest.param("Main", "NGINX", "main.nginx", id="uppercase lowered"),
        pytest.param("main", "my_app", "main.my-app", id="underscore to dash"),
        pytest.param("main", "my__weird  app", "main.my-weird-app", id="runs of bad characters collapse"),
        pytest.param("main", "app.v2", "main.app.v2", id="dots kept"),
        pytest.param("main", "app_", "main.app", id="trailing bad character stripped"),
        pytest.param("main", "café crème", "main.caf-cr-me", id="non-ascii replaced"),
    ],
)
def test_object_name(source: str, app: str, expected: str) -> None:
    name = object_name(source, app)
    assert name == expected
    assert DNS1123_SUBDOMAIN.match(name)


def test_object_name_is_capped_at_253_characters() -> None:
    name = object_name("main", "a" * 400)
    assert len(name) == 253
    assert DNS1123_SUBDOMAIN.match(name)


@pytest.mark.parametrize(
    ("source", "app"),
    [
        pytest.param("main", "_internal", id="app starting with underscore"),
        pytest.param("main", "ünïcode", id="app starting with non-ascii"),
        pytest.param("main", "a" * 247 + "_b", id="cut right after a replaced character"),
    ],
)
def test_object_name_is_always_a_valid_dns_subdomain(source: str, app: str) -> None:
    assert DNS1123_SUBDOMAIN.match(object_name(source, app))


# --- catalog_from_charts -----------------------------------------------------------------------------


def test_catalog_from_charts_builds_entries_with_labels_and_hashes() -> None:
    catalog = catalog_from_charts(
        "main",
        {
            "nginx": [entry("1.0.0", annotations={"kubemart.io/categories": "Web Servers, Proxies"})],
            "redis": [entry("7.0.0")],
        },
    )
    assert catalog.skipped == []
    assert sorted(catalog.entries) == ["main.nginx", "main.redis"]
    nginx = catalog.entries["main.nginx"]
    assert nginx.name == "main.nginx"
    assert nginx.spec.app == "nginx"
    assert nginx.content_hash == content_hash(nginx.spec)
    assert nginx.labels == {
        "kubemart.io/source": "main",
        "kubemart.io/app": "nginx",
        "kubemart.io/category": "Web-Servers",
    }
    assert "kubemart.io/category" not in catalog.entries["main.redis"].labels


@pytest.mark.parametrize(
    ("entries", "skipped_prefix", "skipped_text"),
    [
        pytest.param(
            {"bad": [entry("latest")]}, "bad: ", "no version is valid semver", id="no valid version"
        ),
        pytest.param({"bad": []}, "bad: ", "no version is valid semver", id="no versions"),
        pytest.param(
            {"bad": annotated(price="lots")}, "bad: ", "is not '<amount> <currency>'", id="bad price"
        ),
        pytest.param({"bad": annotated(price="0 USD")}, "bad: ", "is zero", id="zero price"),
        pytest.param(
            {"bad": annotated(requirements="[a]")},
            "bad: ",
            "requirements must be a mapping",
            id="bad requirements",
        ),
    ],
)
def test_catalog_from_charts_skips_bad_charts_with_reasons(
    entries: dict[str, list[dict[str, Any]]], skipped_prefix: str, skipped_text: str
) -> None:
    catalog = catalog_from_charts("main", {"good": [entry("1.0.0")], **entries})
    assert list(catalog.entries) == ["main.good"]
    assert len(catalog.skipped) == 1
    assert catalog.skipped[0].startswith(skipped_prefix)
    assert skipped_text in catalog.skipped[0]


def test_catalog_from_charts_name_collision_keeps_first_in_sorted_order() -> None:
    catalog = catalog_from_charts("main", {"my-app": [entry("2.0.0")], "My_App": [entry("1.0.0")]})
    assert list(catalog.entries) == ["main.my-app"]
    # "My_App" sorts before "my-app", so it takes the name and "my-app" is reported.
    assert catalog.entries["main.my-app"].spec.app == "My_App"
    assert catalog.skipped == ["my-app: its object name main.my-app is taken by another chart"]


def test_catalog_from_charts_label_values_are_valid() -> None:
    app = "Weird App!" + "x" * 80
    catalog = catalog_from_charts("main", {app: annotated(categories="-Dev Tools/CI-")})
    (only,) = catalog.entries.values()
    label = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
    for value in only.labels.values():
        assert len(value) <= 63
        assert label.match(value), value
    assert only.labels["kubemart.io/category"] == "Dev-Tools-CI"


def test_catalog_from_empty_index() -> None:
    assert catalog_from_charts("main", {}) == Catalog()


def test_catalog_from_charts_urls_given_as_a_string() -> None:
    url = "https://charts.example/a-1.0.0.tgz"
    catalog = catalog_from_charts("main", {"a": [entry("1.0.0", urls=url)]})
    assert catalog.entries["main.a"].spec.versions[0].urls == [url]


# --- content_hash -----------------------------------------------------------------------------------


BASE_SPEC = MarketAppSpec(
    source="main", app="nginx", title="NGINX", categories=["web"], latest_version="1.0.0"
)


def test_content_hash_is_stable() -> None:
    again = MarketAppSpec.model_validate(BASE_SPEC.wire())
    assert content_hash(BASE_SPEC) == content_hash(again)
    assert content_hash(BASE_SPEC) == content_hash(BASE_SPEC.model_copy(deep=True))
    assert re.fullmatch(r"[0-9a-f]{32}", content_hash(BASE_SPEC))


def test_content_hash_of_the_same_index_is_the_same() -> None:
    first = catalog_from_charts("main", {"nginx": CHART})
    second = catalog_from_charts("main", {"nginx": list(reversed(CHART))})
    assert first.entries["main.nginx"].content_hash == second.entries["main.nginx"].content_hash


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"title": "Nginx"}, id="title"),
        pytest.param({"description": "web"}, id="description added"),
        pytest.param({"categories": ["web", "proxy"]}, id="category added"),
        pytest.param({"categories": []}, id="category removed"),
        pytest.param({"latest_version": "1.0.1"}, id="latest version"),
        pytest.param({"price": Price(amount="1", currency="USD")}, id="price"),
        pytest.param({"developer": Developer(name="Acme")}, id="developer"),
        pytest.param({"source": "other"}, id="source"),
    ],
)
def test_content_hash_is_sensitive(change: dict[str, Any]) -> None:
    assert content_hash(BASE_SPEC.model_copy(update=change)) != content_hash(BASE_SPEC)


# --- bounds: what a catalog server sends is cut before it becomes a MarketApp -----------------------


HUGE = "x" * 100_000


def test_long_texts_are_cut_to_the_marketapps_bounds() -> None:
    spec = app_spec(
        "s",
        "a",
        [
            entry(
                "1.0.0",
                description=HUGE,
                appVersion=HUGE,
                digest=HUGE,
                annotations={"kubemart.io/title": HUGE, "kubemart.io/developer": HUGE},
            )
        ],
    )
    assert spec.description is not None
    assert len(spec.description) == bounds.MAX_DESCRIPTION
    assert spec.description.endswith("…")
    assert spec.title is not None
    assert len(spec.title) == bounds.MAX_SHORT
    assert spec.developer is not None
    assert len(spec.developer.name) == bounds.MAX_SHORT
    assert len(spec.versions[0].app_version or "") == bounds.MAX_SHORT
    assert len(spec.versions[0].digest or "") == bounds.MAX_SHORT, (
        "a cut digest stays invalid: fetch refuses it"
    )
    MarketAppSpec.model_validate(spec.wire())  # what is written fits the CRD's bounds


def test_values_a_cut_would_make_wrong_are_dropped() -> None:
    long_url = "https://x.example/" + "a" * bounds.MAX_URL
    spec = app_spec(
        "s",
        "a",
        [
            entry(
                "1.0.0",
                icon=long_url,
                home={"not": "a string"},
                created=HUGE,
                urls=[long_url, "https://ok.example/a.tgz"],
                annotations={"kubemart.io/developer": "Acme", "kubemart.io/developer-public-key": HUGE},
            )
        ],
    )
    assert spec.icon is None
    assert spec.home is None
    assert spec.versions[0].created is None
    assert spec.versions[0].urls == ["https://ok.example/a.tgz"]
    assert spec.developer == Developer(name="Acme")


def test_lists_are_capped_and_odd_items_left_out() -> None:
    keywords = [f"k{i}" for i in range(100)] + [HUGE, {"a": "map"}]
    spec = app_spec(
        "s",
        "a",
        [
            entry(
                "1.0.0",
                keywords=[HUGE, {"a": 1}, *keywords],
                urls=[f"https://x/{i}.tgz" for i in range(50)],
                annotations={"kubemart.io/categories": ",".join(f"c{i}" for i in range(50))},
            )
        ],
    )
    assert spec.keywords == [f"k{i}" for i in range(bounds.MAX_KEYWORDS)]
    assert len(spec.categories) == bounds.MAX_CATEGORIES
    assert len(spec.versions[0].urls) == bounds.MAX_URLS


def test_annotations_that_are_not_strings_are_ignored() -> None:
    spec = app_spec("s", "app", [entry("1.0.0", annotations={"kubemart.io/title": {"a": ["b"]}})])
    assert spec.title == "app"


def test_overlong_versions_are_not_versions() -> None:
    spec = app_spec("s", "a", [entry("1.0.0-" + "a" * 200), entry("1.0.0")])
    assert [v.version for v in spec.versions] == ["1.0.0"]


def test_a_chart_with_an_overlong_name_is_left_out_with_a_short_note() -> None:
    name = "a" * 5000
    catalog = catalog_from_charts("main", {name: [entry("1.0.0")], "ok": [entry("1.0.0")]})
    assert list(catalog.entries) == ["main.ok"]
    (note,) = catalog.skipped
    assert len(note) <= MAX_NOTE
    assert f"longer than {MAX_APP_NAME} characters" in note


def test_notes_are_one_short_line_whatever_the_server_sent() -> None:
    nasty = "bad-name-" + "z" * 300
    catalog = catalog_from_charts("main", {nasty: annotated(price="\n\x1b[31m".join(["9"] * 5000))})
    (note,) = catalog.skipped
    assert "\n" not in note
    assert "\x1b" not in note
    assert len(note) <= MAX_NOTE


def test_a_chart_name_with_control_characters_is_left_out() -> None:
    catalog = catalog_from_charts("main", {"bad\nname\x1b[31m": [entry("1.0.0")]})
    assert catalog.entries == {}
    (note,) = catalog.skipped
    assert "control characters" in note
    assert "\n" not in note
    assert "\x1b" not in note


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a: &a [1, 2]\ncpu: *a\n", "aliases", id="aliases refused"),
        pytest.param("{cpu: " + "1" * 2000 + "}", "longer than", id="overlong annotation"),
        pytest.param(
            "{cpu: " + "1" * 100 + "}", "requirements.cpu is not a quantity", id="overlong quantity"
        ),
        pytest.param("{memory: {a: b}}", "requirements.memory is not a quantity", id="mapping as quantity"),
        pytest.param("{a: {b: {c: {d: {e: 1}}}}}", "deeper", id="deep nesting"),
    ],
)
def test_requirements_are_read_with_tight_bounds(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        app_spec("s", "a", annotated(requirements=text))


def test_a_catalog_over_the_app_limit_is_refused_whole() -> None:
    charts = {f"app-{i}": [entry("1.0.0")] for i in range(11)}
    with pytest.raises(CatalogTooLarge, match="lists 11 charts, more than the 10"):
        catalog_from_charts("main", charts, max_apps=10)
    assert len(catalog_from_charts("main", charts, max_apps=11).entries) == 11


def test_each_version_keeps_its_kube_version_from_the_index_and_a_long_one_is_left_to_the_chart() -> None:
    entries = [
        {"version": "2.0.0", "kubeVersion": ">=1.30.0-0"},
        {"version": "1.0.0", "kubeVersion": ">=1.20.0-0 " + "|| >=1.20.0-0 " * 20},
        {"version": "0.9.0"},
    ]
    spec = app_spec("main", "web", entries)
    assert [v.kube_version for v in spec.versions] == [">=1.30.0-0", None, None]
