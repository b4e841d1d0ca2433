"""MarketSource type oci: a real OCI registry on 127.0.0.1 (TLS from a test CA, htpasswd basic auth),
charts pushed with `helm push`, becomes a catalog; its apps install by digest."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from support.apps import handled, install, request_reconcile, running
from support.cluster import Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.registry import PASSWORD, USERNAME, Registry, make_ca, pem
from support.wait import wait_for

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("oci"))
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("oci-token"), token=True)
    yield reg
    reg.close()


@pytest.fixture
def path() -> str:
    """A path of its own in the registry for each test: its charts are the catalog."""
    return f"p{uuid.uuid4().hex[:8]}"


@pytest.fixture
def source_name(objects: Objects) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    objects.delete("marketsources", name)


def make_source(
    k8s: client.ApiClient,
    objects: Objects,
    registry: Registry,
    *,
    name: str,
    namespace: str,
    path: str,
    secret: dict[str, str] | None = None,
    secret_name: str = "oci-auth",
    **spec: Any,
) -> None:
    data = (
        secret
        if secret is not None
        else {"username": USERNAME, "password": PASSWORD, "ca.crt": registry.ca_pem}
    )
    client.CoreV1Api(k8s).create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=secret_name), string_data=data)
    )
    objects.create(
        "marketsources",
        {
            "kind": "MarketSource",
            "metadata": {"name": name},
            "spec": {
                "type": "oci",
                "url": registry.url(path),
                "secretRef": {"name": secret_name, "namespace": namespace},
                **spec,
            },
        },
    )


def apps_of(objects: Objects, source: str) -> dict[str, dict[str, Any]]:
    return {
        a["metadata"]["name"]: a for a in objects.list("marketapps", labels=f"kubemart.io/source={source}")
    }


def synced(objects: Objects, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: (s := objects.get("marketsources", name)) and ready(s) and s, timeout=90, what="source Ready"
    )


def test_sync_lists_charts_and_semver_versions_and_says_what_it_left_out(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    source_name: str,
    path: str,
) -> None:
    registry.push(path, "hello", "0.1.0")
    registry.push(path, "hello", "0.2.0+build.7")
    registry.push(path, "blog", "1.0.0", annotations={"kubemart.io/title": "Blog"})
    registry.push(f"{path}x", "elsewhere", "1.0.0")  # another path: not in the catalog
    registry.tag(f"{path}/hello", "0.1.0", "latest")
    image_config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    registry.push_artifact(
        f"{path}/image", "1.0.0", config=image_config, config_type="application/vnd.oci.image.config.v1+json"
    )
    make_source(k8s, objects, registry, name=source_name, namespace=namespace, path=path)

    src = synced(objects, source_name)
    assert src["status"]["appCount"] == 2
    assert src["status"]["revision"].startswith("sha256:")
    assert "2 versions left out" in condition(src)["message"]  # type: ignore[index]
    apps = apps_of(objects, source_name)
    assert sorted(apps) == [f"{source_name}.blog", f"{source_name}.hello"]
    hello = apps[f"{source_name}.hello"]["spec"]
    assert [v["version"] for v in hello["versions"]] == ["0.2.0+build.7", "0.1.0"]
    pushed = registry.manifest(f"{path}/hello", "0.1.0")
    assert pushed["config"]["mediaType"] == HELM_CONFIG
    for v in hello["versions"]:
        assert v["digest"].startswith("sha256:")
        assert v["urls"] == [f"oci://{registry.host}/{path}/hello@{v['digest']}"]
    assert hello["description"] == "A test app"
    assert apps[f"{source_name}.blog"]["spec"]["title"] == "Blog", "metadata from the config blob"

    def said() -> str | None:
        return next((m for _, r, m in objects.events_for(source_name) if r == "VersionsSkipped"), None)

    message = wait_for(said, timeout=20, what="VersionsSkipped Event")
    assert "hello: tag 'latest' is not a semver version" in message
    assert "image:1.0.0 is not a Helm chart" in message


def test_unchanged_registry_costs_the_tags_lists_and_writes_nothing(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    source_name: str,
    path: str,
) -> None:
    for chart in ("alpha", "beta", "gamma"):
        registry.push(path, chart, "1.0.0")
    make_source(k8s, objects, registry, name=source_name, namespace=namespace, path=path)
    synced(objects, source_name)
    versions = {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source_name).items()}
    assert len(versions) == 3
    seen = len(registry.requests())

    stamp = request_reconcile(objects, "marketsources", source_name)
    wait_for(
        lambda: handled(objects, "marketsources", source_name, stamp), timeout=30, what="re-sync handled"
    )

    new = registry.requests()[seen:]
    assert sorted(new) == sorted(
        [("GET", "/v2/_catalog?n=1000")]
        + [("GET", f"/v2/{path}/{c}/tags/list?n=1000") for c in ("alpha", "beta", "gamma")]
    ), "the catalog and one tags list per chart; no manifest, no blob, no 401"
    assert {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source_name).items()} == versions

    # A new version: only its manifest and config are read, and only its app is written.
    registry.push(path, "beta", "1.1.0")
    seen = len(registry.requests())
    stamp = request_reconcile(objects, "marketsources", source_name)
    wait_for(
        lambda: handled(objects, "marketsources", source_name, stamp), timeout=30, what="re-sync handled"
    )
    new = registry.requests()[seen:]
    assert [r for r in new if "/manifests/" in r[1] or "/blobs/" in r[1]] == [
        ("GET", f"/v2/{path}/beta/manifests/1.1.0"),
        ("GET", next(p for m, p in new if "/blobs/" in p)),
    ]
    after = {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source_name).items()}
    changed = sorted(n for n in after if after[n] != versions[n])
    assert changed == [f"{source_name}.beta"]


def test_charts_listed_in_the_spec_need_no_catalog(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    source_name: str,
    path: str,
) -> None:
    registry.push(path, "hello", "0.1.0")
    registry.push(path, "blog", "1.0.0")
    seen = len(registry.requests())
    make_source(
        k8s, objects, registry, name=source_name, namespace=namespace, path=path, charts=["hello", "nothere"]
    )
    synced(objects, source_name)
    assert list(apps_of(objects, source_name)) == [f"{source_name}.hello"]
    assert not [p for _, p in registry.requests()[seen:] if "_catalog" in p]
    wait_for(
        lambda: any(
            r == "VersionsSkipped" and "nothere: no repository" in m
            for _, r, m in objects.events_for(source_name)
        ),
        timeout=20,
        what="the missing chart said",
    )


def test_install_upgrade_by_range_and_uninstall_from_oci(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    source_name: str,
    path: str,
) -> None:
    registry.push(path, "hello", "0.1.0")
    make_source(k8s, objects, registry, name=source_name, namespace=namespace, path=path)
    synced(objects, source_name)
    install(
        objects,
        namespace,
        "web",
        source=source_name,
        app="hello",
        version="~0.1.0",
        values={"message": "oci"},
    )
    app = wait_for(lambda: running(objects, namespace, "web"), timeout=120, what="web Running")
    listed = apps_of(objects, source_name)[f"{source_name}.hello"]["spec"]["versions"][0]
    assert app["status"]["installedVersion"] == "0.1.0"
    assert app["status"]["chartDigest"] == listed["digest"], (
        "installed by the manifest digest the catalog lists"
    )
    releases = json.loads(cluster.run("helm", "list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["chart"]) for r in releases] == [("web", "hello-0.1.0")]
    core = client.CoreV1Api(k8s)
    assert core.read_namespaced_config_map("web-config", namespace).data == {"message": "oci"}

    registry.push(path, "hello", "0.1.5")
    registry.push(path, "hello", "0.2.0")  # out of the range
    request_reconcile(objects, "marketsources", source_name)
    app = wait_for(
        lambda: (
            (a := running(objects, namespace, "web")) and a["status"]["installedVersion"] == "0.1.5" and a
        ),
        timeout=120,
        what="upgraded to 0.1.5",
    )
    assert app["status"]["history"][0]["operation"] == "upgrade"

    objects.delete("appinstalls", "web", namespace)
    wait_for(lambda: objects.get("appinstalls", "web", namespace) is None, timeout=120, what="uninstalled")
    assert json.loads(cluster.run("helm", "list", "-n", namespace, "-a", "-o", "json").stdout) == []


def _other_ca() -> str:
    return pem(make_ca("not the registry's CA")[1])


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        pytest.param("unreachable", "RepositoryUnreachable", id="unreachable"),
        pytest.param("bad-credentials", "RepositoryAuthFailed", id="bad credentials"),
        pytest.param("bad-ca", "TLSError", id="bad CA"),
        pytest.param("bad-json", "InvalidRegistryResponse", id="config not JSON"),
        pytest.param("oversized", "InvalidRegistryResponse", id="config oversized"),
        pytest.param("wrong-layer-type", "InvalidRegistryResponse", id="chart layer of a wrong media type"),
    ],
)
def test_broken_registry_reports_and_keeps_last_good_catalog(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    registry: Registry,
    namespace: str,
    source_name: str,
    path: str,
    breakage: str,
    reason: str,
) -> None:
    registry.push(path, "hello", "0.1.0")
    make_source(k8s, objects, registry, name=source_name, namespace=namespace, path=path)
    synced(objects, source_name)
    core = client.CoreV1Api(k8s)
    pushed: str | None = None

    if breakage == "unreachable":
        registry.stop()
    elif breakage == "bad-credentials":
        core.patch_namespaced_secret("oci-auth", namespace, {"stringData": {"password": "wrong-password"}})
    elif breakage == "bad-ca":
        core.patch_namespaced_secret("oci-auth", namespace, {"stringData": {"ca.crt": _other_ca()}})
    else:
        configs = {
            "bad-json": b"{not json",
            "oversized": json.dumps({"name": "big", "version": "1.0.0", "description": "x" * 2**21}).encode(),
            "wrong-layer-type": json.dumps({"name": "broken", "version": "1.0.0"}).encode(),
        }
        layer_type = "application/octet-stream" if breakage == "wrong-layer-type" else HELM_LAYER
        pushed = registry.push_artifact(
            f"{path}/broken",
            "1.0.0",
            config=configs[breakage],
            config_type=HELM_CONFIG,
            layer_type=layer_type,
        )
    try:
        request_reconcile(objects, "marketsources", source_name)

        def broken() -> dict[str, Any] | None:
            c = condition(objects.get("marketsources", source_name))
            return c if c and c["status"] == "False" else None

        cond = wait_for(broken, timeout=60, what=f"Ready=False {reason}")
        assert cond["reason"] == reason, cond
        assert "kept" in cond["message"], cond["message"]
        assert PASSWORD not in cond["message"]
        assert "wrong-password" not in cond["message"]
        assert list(apps_of(objects, source_name)) == [f"{source_name}.hello"], "the last good catalog stays"
        wait_for(
            lambda: any(r == reason for _, r, _ in objects.events_for(source_name)), timeout=20, what="Event"
        )
    finally:
        if breakage == "unreachable":
            registry.start()
    if breakage == "bad-credentials":
        core.patch_namespaced_secret("oci-auth", namespace, {"stringData": {"password": PASSWORD}})
    elif breakage == "bad-ca":
        core.patch_namespaced_secret("oci-auth", namespace, {"stringData": {"ca.crt": registry.ca_pem}})
    elif pushed is not None:
        registry.delete_manifest(f"{path}/broken", pushed)
    request_reconcile(objects, "marketsources", source_name)
    synced(objects, source_name)
    assert PASSWORD not in operator.log(), "the password never reaches the log"


def test_bearer_token_flow_with_credentials_anonymously_and_refused(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    token_registry: Registry,
    namespace: str,
    source_name: str,
) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    suffix = uuid.uuid4().hex[:6]
    private, public = f"private{suffix}", f"public/c{suffix}"
    token_registry.push(private, "hello", "0.1.0")
    token_registry.push(public, "blog", "1.0.0")

    # With credentials: the token is asked with Basic auth, for the scopes the registry names.
    make_source(k8s, objects, token_registry, name=source_name, namespace=namespace, path=private)
    synced(objects, source_name)
    assert list(apps_of(objects, source_name)) == [f"{source_name}.hello"]
    asked = tokens.requests()
    assert ("registry:catalog:*", True) in asked
    assert (f"repository:{private}/hello:pull", True) in asked

    # Unchanged re-sync: tokens are kept, so no token request and no 401, only the lists.
    seen_registry, seen_tokens = len(token_registry.requests()), len(tokens.requests())
    stamp = request_reconcile(objects, "marketsources", source_name)
    wait_for(
        lambda: handled(objects, "marketsources", source_name, stamp), timeout=30, what="re-sync handled"
    )
    assert sorted(token_registry.requests()[seen_registry:]) == [
        ("GET", "/v2/_catalog?n=1000"),
        ("GET", f"/v2/{private}/hello/tags/list?n=1000"),
    ]
    assert tokens.requests()[seen_tokens:] == []

    # Anonymous (a Secret with only the CA): public charts listed in spec.charts (no catalog for anonymous).
    anonymous = f"{source_name}-anon"
    only_ca = {"ca.crt": token_registry.ca_pem}
    make_source(
        k8s,
        objects,
        token_registry,
        name=anonymous,
        namespace=namespace,
        path=public,
        secret=only_ca,
        secret_name="only-ca",
        charts=["blog"],
    )
    try:
        synced(objects, anonymous)
        assert list(apps_of(objects, anonymous)) == [f"{anonymous}.blog"]
        assert (f"repository:{public}/blog:pull", False) in tokens.requests()

        # Anonymous on a private path: the token grants nothing, the registry refuses it.
        objects.patch(
            "marketsources", anonymous, {"spec": {"url": token_registry.url(private), "charts": ["hello"]}}
        )

        def refused() -> dict[str, Any] | None:
            c = condition(objects.get("marketsources", anonymous))
            return c if c and c["status"] == "False" else None

        cond = wait_for(refused, timeout=60, what="Ready=False")
        assert cond["reason"] == "RepositoryAuthFailed", cond
        assert "kept" in cond["message"]
        assert list(apps_of(objects, anonymous)) == [f"{anonymous}.blog"], "the last good catalog stays"
    finally:
        objects.delete("marketsources", anonymous)
