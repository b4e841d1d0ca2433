"""MarketSource `type: git`: a REAL git server on 127.0.0.1 (git's own http-backend behind basic auth)
holding chart directories (real Olares apps among them) and tomo app definitions, synced into MarketApps,
installed, upgraded by a version range and uninstalled; each failure keeps the last good catalog."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from support.apps import handled, install, request_reconcile, running
from support.cluster import Cluster
from support.gitserver import GitRepo, GitServer, self_signed_tls
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.wait import wait_for

ROOT = Path(__file__).resolve().parent
HELLO = ROOT / "charts" / "hello"
OLARES = ROOT / "fixtures" / "olares"
OLARES_APPS = ("adguardhome", "bazarr", "calendar", "openedaispeechv2")
USER, PASSWORD = "alice", "s3cret-pass"

NGINX = """\
id: webserver
name: Web Server
description: nginx, from a definition
version: "1.27"
category: networking
tags: [web, proxy]
author: Test
license: BSD-2-Clause
docker:
  image: registry.invalid/nginx:1.27
  ports:
    - container: 80
      host: 8080
  environment:
    - name: TZ
      default: UTC
  restart_policy: unless-stopped
  privileged: false
  capabilities: []
requirements:
  min_ram: 64
"""
VPN = """\
id: vpn
name: VPN
version: 1.0.0
docker:
  image: registry.invalid/vpn:1
  privileged: true
  capabilities: [NET_ADMIN]
"""
BAD = """\
id: Not_A_Name
name: Broken
version: 1.0.0
docker:
  image: "UPPER CASE is no image"
  ports:
    - container: 70000
"""


def hello_chart(repo: GitRepo, version: str, where: str = "charts/hello") -> None:
    repo.copy_tree(HELLO, where)
    chart = (HELLO / "Chart.yaml").read_text().replace("version: 0.1.0", f"version: {version}")
    repo.write(f"{where}/Chart.yaml", chart)


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    (tmp_path / "srv").mkdir()
    server = GitServer(tmp_path / "srv")
    server.require_basic_auth(USER, PASSWORD)
    yield server
    server.close()


@pytest.fixture
def store(git_server: GitServer) -> GitRepo:
    """The private repository: hello (a chart dir), real Olares charts, definitions good and bad."""
    repo = git_server.repo("store")
    hello_chart(repo, "0.1.0")
    for app in OLARES_APPS:
        repo.copy_tree(OLARES / app, f"olares/{app}")
    repo.write("apps/networking/webserver.yaml", NGINX)
    repo.write("apps/networking/vpn.yaml", VPN)
    repo.write("apps/tools/broken.yaml", BAD)
    repo.write("README.md", "not an app\n")
    repo.commit("first")
    return repo


@pytest.fixture
def source(objects: Objects, k8s: client.ApiClient) -> Iterator[str]:
    name = f"t-git-{uuid.uuid4().hex[:6]}"
    yield name
    objects.delete("marketsources", name)
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(k8s).delete_namespaced_secret(name, "default")


def put_secret(k8s: client.ApiClient, name: str, data: dict[str, str]) -> None:
    core = client.CoreV1Api(k8s)
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    try:
        core.create_namespaced_secret("default", body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_secret(name, "default", body)


def create_git_source(objects: Objects, name: str, url: str, **spec: object) -> None:
    objects.create(
        "marketsources",
        {
            "kind": "MarketSource",
            "metadata": {"name": name},
            "spec": {"type": "git", "url": url, "secretRef": {"name": name, "namespace": "default"}, **spec},
        },
    )


def apps_of(objects: Objects, source: str) -> dict[str, dict]:
    return {a["spec"]["app"]: a for a in objects.list("marketapps", labels=f"kubemart.io/source={source}")}


def versions_of(objects: Objects, source: str) -> dict[str, str]:
    return {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source).items()}


def synced(objects: Objects, name: str, revision: str) -> dict | None:
    src = objects.get("marketsources", name)
    if ready(src) and src["status"].get("revision") == revision:  # type: ignore[index]
        return src
    return None


def event_text(objects: Objects, name: str, reason: str, holding: str = "") -> str:
    """The messages of the source's Events with `reason`, once one holds `holding` (Events come after status)."""

    def found() -> str | None:
        text = " ".join(m for _, r, m in objects.events_for(name) if r == reason)
        return text if text and holding in text else None

    return str(wait_for(found, timeout=30, what=f"a {reason} Event"))


def at_generation(objects: Objects, name: str, generation: int) -> dict | None:
    src = objects.get("marketsources", name)
    if ready(src) and src["status"].get("observedGeneration") == generation:  # type: ignore[index]
        return src
    return None


def failing(objects: Objects, name: str, reason: str) -> dict | None:
    c = condition(objects.get("marketsources", name))
    return c if c and c["status"] == "False" and c["reason"] == reason else None


def test_git_source_syncs_chart_dirs_and_definitions_incrementally(
    objects: Objects,
    operator: OperatorProcess,
    k8s: client.ApiClient,
    git_server: GitServer,
    store: GitRepo,
    source: str,
) -> None:
    first = store.commit("again")  # no change of the tree: the same apps
    put_secret(k8s, source, {"username": USER, "password": PASSWORD})
    create_git_source(objects, source, git_server.url("store"))
    src = wait_for(lambda: synced(objects, source, first), timeout=90, what="source Ready at the commit")

    apps = apps_of(objects, source)
    assert sorted(apps) == ["adguardhome", "bazarr", "hello", "openedaispeechv2", "webserver"], (
        "calendar: .suspend"
    )
    assert src["status"]["appCount"] == 5
    web = apps["webserver"]["spec"]
    assert web["title"] == "Web Server"
    assert web["categories"] == ["networking"]
    assert web["latestVersion"] == "1.27.0"
    assert web["versions"][0]["urls"] == ["apps/networking/webserver.yaml"]
    assert web["versions"][0]["digest"].startswith("sha256:")
    assert apps["adguardhome"]["spec"]["latestVersion"] == "1.0.12"
    # The git source reads OlaresManifest.yaml from the tree (a templated one too); the catalog maps it.
    assert apps["adguardhome"]["spec"]["title"] == "AdGuard Home"
    assert apps["openedaispeechv2"]["spec"]["title"] == "OpenedAI Speech For Cluster"
    skipped = event_text(objects, source, "ChartsSkipped", "broken.yaml")
    assert "vpn.yaml" in skipped, skipped
    assert "privileged" in skipped, skipped
    assert "broken.yaml" in skipped, skipped
    assert "invalid" in skipped, skipped

    # Unchanged: one ls-remote (protocol v2: the advertisement and one ls-refs), no MarketApp written.
    before, seen = versions_of(objects, source), git_server.requests.count()
    stamp = request_reconcile(objects, "marketsources", source)
    wait_for(lambda: handled(objects, "marketsources", source, stamp), timeout=30, what="re-sync handled")
    assert git_server.requests.count() - seen == 2, git_server.requests.lines[seen:]
    assert versions_of(objects, source) == before

    # A new commit that changes one app rewrites that app only.
    hello_chart(store, "0.2.0")
    second = store.commit("hello 0.2.0")
    stamp = request_reconcile(objects, "marketsources", source)
    wait_for(lambda: synced(objects, source, second), timeout=60, what="synced the new commit")
    after = versions_of(objects, source)
    assert after["hello"] != before["hello"]
    assert {k: v for k, v in after.items() if k != "hello"} == {
        k: v for k, v in before.items() if k != "hello"
    }
    assert apps_of(objects, source)["hello"]["spec"]["latestVersion"] == "0.2.0"


def test_privileged_definition_is_refused_until_the_source_allows_it(
    objects: Objects,
    operator: OperatorProcess,
    k8s: client.ApiClient,
    git_server: GitServer,
    store: GitRepo,
    source: str,
) -> None:
    put_secret(k8s, source, {"username": USER, "password": PASSWORD})
    create_git_source(objects, source, git_server.url("store"), path="apps")
    wait_for(lambda: ready(objects.get("marketsources", source)), timeout=90, what="source Ready")
    assert sorted(apps_of(objects, source)) == ["webserver"], "path limits the tree; vpn is refused"

    objects.patch("marketsources", source, {"spec": {"definitions": {"allowPrivileged": True}}})
    wait_for(lambda: at_generation(objects, source, 2), timeout=60, what="re-synced with privileged allowed")
    assert "vpn" not in apps_of(objects, source), "NET_ADMIN is still not in allowedCapabilities"
    assert "NET_ADMIN" in event_text(objects, source, "ChartsSkipped", "NET_ADMIN")
    objects.patch(
        "marketsources",
        source,
        {"spec": {"definitions": {"allowPrivileged": True, "allowedCapabilities": ["NET_ADMIN"]}}},
    )
    wait_for(lambda: "vpn" in apps_of(objects, source), timeout=60, what="vpn allowed")


def test_install_upgrade_by_range_and_uninstall_of_a_chart_dir_and_a_definition(
    objects: Objects,
    operator: OperatorProcess,
    k8s: client.ApiClient,
    git_server: GitServer,
    store: GitRepo,
    source: str,
    namespace: str,
) -> None:
    put_secret(k8s, source, {"username": USER, "password": PASSWORD})
    create_git_source(objects, source, git_server.url("store"))
    wait_for(lambda: ready(objects.get("marketsources", source)), timeout=90, what="source Ready")
    install(objects, namespace, "hello", source=source, app="hello", version=">=0.1.0 <1.0.0")
    install(objects, namespace, "web", source=source, app="webserver")
    hello = wait_for(lambda: running(objects, namespace, "hello"), timeout=180, what="hello Running")
    assert hello["status"]["installedVersion"] == "0.1.0"
    wait_for(lambda: running(objects, namespace, "web"), timeout=180, what="webserver Running")
    apps = client.AppsV1Api(k8s)
    core = client.CoreV1Api(k8s)
    assert apps.read_namespaced_deployment("hello", namespace).spec.replicas == 1
    web = apps.read_namespaced_deployment("web", namespace)
    container = web.spec.template.spec.containers[0]
    assert container.image == "registry.invalid/nginx:1.27"
    assert container.security_context.privileged is None
    assert [(e.name, e.value) for e in container.env] == [("TZ", "UTC")]
    svc = core.read_namespaced_service("web", namespace)
    assert [(p.port, p.target_port) for p in svc.spec.ports] == [(8080, 80)]

    hello_chart(store, "0.2.0")
    second = store.commit("hello 0.2.0")
    request_reconcile(objects, "marketsources", source)
    wait_for(lambda: synced(objects, source, second), timeout=60, what="synced 0.2.0")
    wait_for(
        lambda: (
            (running(objects, namespace, "hello") or {}).get("status", {}).get("installedVersion") == "0.2.0"
        ),
        timeout=180,
        what="hello upgraded to 0.2.0 by its range",
    )

    objects.delete("appinstalls", "hello", namespace)
    objects.delete("appinstalls", "web", namespace)
    wait_for(
        lambda: objects.get("appinstalls", "web", namespace) is None, timeout=120, what="web uninstalled"
    )
    wait_for(lambda: objects.get("appinstalls", "hello", namespace) is None, timeout=120, what="hello gone")
    assert not apps.list_namespaced_deployment(namespace).items
    assert not [s for s in core.list_namespaced_service(namespace).items if s.metadata.name == "web"]


def test_failures_say_why_and_keep_the_last_good_catalog(
    objects: Objects,
    operator: OperatorProcess,
    k8s: client.ApiClient,
    git_server: GitServer,
    store: GitRepo,
    source: str,
) -> None:
    put_secret(k8s, source, {"username": USER, "password": PASSWORD})
    create_git_source(objects, source, git_server.url("store"))
    wait_for(lambda: ready(objects.get("marketsources", source)), timeout=90, what="source Ready")
    good = sorted(apps_of(objects, source))

    put_secret(k8s, source, {"username": USER, "password": "wrong"})
    request_reconcile(objects, "marketsources", source)
    c = wait_for(lambda: failing(objects, source, "RepositoryAuthFailed"), timeout=60, what="auth failure")
    assert "last good catalog (5 apps) is kept" in c["message"]
    assert "wrong" not in c["message"]
    assert "refused the credentials" in event_text(objects, source, "RepositoryAuthFailed")
    assert sorted(apps_of(objects, source)) == good
    put_secret(k8s, source, {"username": USER, "password": PASSWORD})

    objects.patch("marketsources", source, {"spec": {"ref": {"branch": "no-such-branch"}}})
    c = wait_for(lambda: failing(objects, source, "GitRefNotFound"), timeout=60, what="missing ref")
    assert "no-such-branch" in c["message"]
    assert sorted(apps_of(objects, source)) == good

    objects.patch("marketsources", source, {"spec": {"ref": None, "url": "http://127.0.0.1:9/nothing.git"}})
    wait_for(lambda: failing(objects, source, "RepositoryUnreachable"), timeout=60, what="unreachable")
    assert sorted(apps_of(objects, source)) == good

    # Malformed content: a Chart.yaml that is not YAML leaves that app out; the rest is synced.
    store.write("charts/hello/Chart.yaml", "name: [unclosed\n")
    bad = store.commit("broken chart")
    objects.patch("marketsources", source, {"spec": {"url": git_server.url("store")}})
    wait_for(lambda: synced(objects, source, bad), timeout=60, what="synced the broken commit")
    assert sorted(apps_of(objects, source)) == ["adguardhome", "bazarr", "openedaispeechv2", "webserver"]
    assert "charts/hello" in event_text(objects, source, "ChartsSkipped", "charts/hello")


def test_bad_ca_then_the_right_ca(
    objects: Objects,
    operator: OperatorProcess,
    k8s: client.ApiClient,
    tmp_path: Path,
    source: str,
    namespace: str,
) -> None:
    ca_pem, tls = self_signed_tls(tmp_path)
    (tmp_path / "tls").mkdir()
    server = GitServer(tmp_path / "tls", tls=tls)
    try:
        server.require_basic_auth(USER, PASSWORD)
        repo = server.repo("secure")
        hello_chart(repo, "1.0.0")
        commit = repo.commit("one")
        put_secret(k8s, source, {"username": USER, "password": PASSWORD})
        create_git_source(objects, source, server.url("secure"))
        c = wait_for(lambda: failing(objects, source, "TLSError"), timeout=60, what="TLS refused")
        assert "ca.crt" in c["message"]
        put_secret(k8s, source, {"username": USER, "password": PASSWORD, "ca.crt": ca_pem})
        request_reconcile(objects, "marketsources", source)
        wait_for(lambda: synced(objects, source, commit), timeout=90, what="synced with the CA")
        assert sorted(apps_of(objects, source)) == ["hello"]
    finally:
        server.close()


def test_a_new_operator_with_an_empty_cache_rewrites_nothing(
    cluster: Cluster,
    objects: Objects,
    k8s: client.ApiClient,
    git_server: GitServer,
    store: GitRepo,
    source: str,
    shared_operator_paused: None,
    tmp_path: Path,
) -> None:
    """Archives are deterministic: another process, packaging every app again from the same commit
    into an empty cache, finds the same digests, so its full sync writes no MarketApp."""
    put_secret(k8s, source, {"username": USER, "password": PASSWORD})
    first = OperatorProcess(cluster, extra_env={"KUBEMART_CHART_CACHE_DIR": str(tmp_path / "one")})
    first.start()
    try:
        create_git_source(objects, source, git_server.url("store"))
        wait_for(lambda: ready(objects.get("marketsources", source)), timeout=90, what="source Ready")
    finally:
        first.stop()
    before = versions_of(objects, source)
    assert len(before) == 5
    second = OperatorProcess(cluster, extra_env={"KUBEMART_CHART_CACHE_DIR": str(tmp_path / "two")})
    second.start()
    try:
        seen = git_server.requests.count()
        stamp = request_reconcile(objects, "marketsources", source)
        wait_for(lambda: handled(objects, "marketsources", source, stamp), timeout=90, what="full re-sync")
        assert git_server.requests.count() - seen == 4, "ls-remote and a fetch: nothing was cached"
        assert list((tmp_path / "two").glob("*.tgz")), "every app was packaged again"
        assert ready(objects.get("marketsources", source))
        assert versions_of(objects, source) == before, "same digests: no MarketApp written"
    finally:
        second.stop()
