"""The OCI source's pure parts: oci:// URLs, tags as versions, Link pagination, auth challenges."""

from __future__ import annotations

import pytest

from kubemart.sources.oci.reference import (
    InvalidReference,
    Registry,
    next_link,
    parse_challenge,
    parse_chart_url,
    parse_registry,
    signature_tag,
    tag_version,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("url", "host", "prefix"),
    [
        ("oci://ghcr.io/acme/charts", "ghcr.io", "acme/charts"),
        ("oci://127.0.0.1:5000/charts/", "127.0.0.1:5000", "charts"),
        ("oci://registry.example.com", "registry.example.com", ""),
        ("oci://[::1]:5000/x", "[::1]:5000", "x"),
    ],
)
def test_registry_urls(url: str, host: str, prefix: str) -> None:
    assert parse_registry(url) == Registry(host=host, prefix=prefix)
    assert parse_registry(url).base == f"https://{host}"


@pytest.mark.parametrize(
    "url",
    [
        "https://ghcr.io/acme",
        "oci://user:pass@ghcr.io/acme",
        "oci://ghcr.io/acme?x=1",
        "oci://ghcr.io/Acme",
        "oci://ghcr.io:99999/acme",
        "oci:///acme",
    ],
)
def test_unusable_registry_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidReference):
        parse_registry(url)


def test_charts_are_the_repositories_right_under_the_path() -> None:
    reg = Registry(host="r.io", prefix="acme/charts")
    assert reg.chart_of("acme/charts/hello") == "hello"
    assert reg.chart_of("acme/charts/deep/er") is None
    assert reg.chart_of("acme/chartsx/hello") is None
    assert reg.chart_of("other/hello") is None
    assert Registry(host="r.io", prefix="").chart_of("hello") == "hello"
    assert reg.repository("hello") == "acme/charts/hello"
    assert reg.chart_url("acme/charts/hello", DIGEST) == f"oci://r.io/acme/charts/hello@{DIGEST}"


def test_chart_urls_round_trip_and_refuse_others() -> None:
    assert parse_chart_url(f"oci://r.io:5000/acme/hello@{DIGEST}") == ("r.io:5000", "acme/hello", DIGEST)
    for bad in (
        f"https://r.io/acme/hello@{DIGEST}",
        "oci://r.io/acme/hello:1.0.0",
        "oci://r.io/acme@sha256:12",
    ):
        with pytest.raises(InvalidReference):
            parse_chart_url(bad)


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("1.2.3", "1.2.3"),
        ("0.2.0_build.7", "0.2.0+build.7"),  # helm push writes + as _
        ("1.0.0-rc.1", "1.0.0-rc.1"),
        ("v1.2.3", "v1.2.3"),
        ("1.2", "1.2"),
        ("latest", None),
        ("main", None),
        ("sha256-" + "ab" * 32 + ".sig", None),  # a cosign signature tag
        ("1.2.3.4", None),
        ("", None),
        ("-1.0.0", None),
    ],
)
def test_only_semver_tags_are_versions(tag: str, version: str | None) -> None:
    assert tag_version(tag) == version


def test_cosign_tags_are_recognised() -> None:
    assert signature_tag("sha256-" + "ab" * 32 + ".sig")
    assert signature_tag("sha256-" + "ab" * 32 + ".att")
    assert not signature_tag("latest")


def test_link_header_pagination() -> None:
    here = "https://r.io/v2/_catalog?n=2"
    assert next_link('</v2/_catalog?last=b&n=2>; rel="next"', here) == "https://r.io/v2/_catalog?last=b&n=2"
    assert next_link("<https://r.io/v2/x/tags/list?last=1.0.0&n=2>; rel=next", here) == (
        "https://r.io/v2/x/tags/list?last=1.0.0&n=2"
    )
    assert next_link('</v2/_catalog?last=a>; rel="prev", </v2/_catalog?last=c>; rel="next"', here) == (
        "https://r.io/v2/_catalog?last=c"
    )
    assert next_link(None, here) is None
    assert next_link('</v2/_catalog?last=a>; rel="prev"', here) is None
    with pytest.raises(InvalidReference):
        next_link('<https://evil.example/v2/_catalog?last=b>; rel="next"', here)


def test_bearer_challenges_as_ghcr_and_docker_hub_send_them() -> None:
    hub = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert hub is not None
    assert hub.scheme == "bearer"
    assert hub.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/nginx:pull",
    }
    ghcr = parse_challenge(
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"'
    )
    assert ghcr is not None
    assert ghcr.params["realm"] == "https://ghcr.io/token"


def test_basic_and_odd_challenges() -> None:
    basic = parse_challenge('Basic realm="kubemart-test"')
    assert basic is not None
    assert (basic.scheme, basic.params) == ("basic", {"realm": "kubemart-test"})
    quoted = parse_challenge(
        r'Bearer realm="https://a.io/t", scope="repository:x:pull,push", error="a \"b\""'
    )
    assert quoted is not None
    assert quoted.params["scope"] == "repository:x:pull,push"
    assert quoted.params["error"] == 'a "b"'
    assert parse_challenge(None) is None
    assert parse_challenge("  ") is None
    bare = parse_challenge("Bearer")
    assert bare is not None
    assert bare.params == {}
