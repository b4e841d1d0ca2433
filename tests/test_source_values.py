"""Real charts' catalog metadata, Olares apps as catalog entries, and a MarketSource's values as the
defaults Olares injects: against the real API server, helm and a chart repository on 127.0.0.1.

The Olares chart is Uptime Kuma from beclab/apps (tests/fixtures/olares, Apache-2.0): its Deployment
mounts `{{ .Values.userspace.appData }}/<release>`, a value Olares injects at install time.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.apps import create_source, install, request_reconcile, running
from support.cluster import BIN, Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.realcharts import real_charts
from support.repo import ChartRepo
from support.wait import wait_for
from test_kubectl_market import market, ok

pytestmark = pytest.mark.cluster
UPTIMEKUMA = Path(__file__).resolve().parent / "fixtures" / "olares" / "uptimekuma"
INJECTED = {"userspace": {"appData": "/tmp/olares/data", "appCache": "/tmp/olares/cache"}}


def package_olares(repo: ChartRepo) -> None:
    subprocess.run(
        [str(BIN / "helm"), "package", str(UPTIMEKUMA), "-d", str(repo.public)],
        check=True,
        capture_output=True,
    )


def chart_gets(repo: ChartRepo) -> int:
    return sum(1 for p in repo.log.paths() if p.endswith(".tgz"))


@pytest.fixture
def source_name(objects: Objects) -> Iterator[str]:
    names: list[str] = []

    def make() -> str:
        names.append(f"t-{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield make  # type: ignore[misc]
    for name in names:
        objects.delete("marketsources", name)


def synced(objects: Objects, name: str) -> dict[str, Any] | None:
    found = objects.get("marketsources", name)
    return found if ready(found) else None


def test_real_charts_metadata_and_olares_apps_in_the_catalog(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: Any
) -> None:
    corpus = real_charts()
    for chart in corpus:
        shutil.copy(chart.archive, chart_repo.public)
    package_olares(chart_repo)
    chart_repo.reindex()

    # A plain source: nothing but the index is downloaded, whatever the charts are.
    plain = source_name()
    create_source(objects, plain, chart_repo.url)
    wait_for(lambda: synced(objects, plain), timeout=90, what="plain source Ready")
    assert chart_gets(chart_repo) == 0
    kuma = objects.get("marketapps", f"{plain}.uptimekuma")
    assert kuma is not None
    assert (kuma["spec"]["title"], kuma["spec"].get("manifest")) == ("uptimekuma", None)

    # An Olares source: each chart's newest archive read once for its OlaresManifest.yaml.
    olares = source_name()
    create_source(objects, olares, chart_repo.url, olaresManifests=True)
    wait_for(lambda: synced(objects, olares), timeout=180, what="Olares source Ready")
    read_once = chart_gets(chart_repo)
    assert read_once == len(corpus) + 1
    spec = objects.get("marketapps", f"{olares}.uptimekuma")["spec"]  # type: ignore[index]
    assert (spec["title"], spec["manifest"], spec["categories"]) == (
        "Uptime Kuma",
        "olares",
        ["Developer Tools"],
    )
    assert spec["entrances"] == [
        {
            "name": "uptimekuma",
            "title": "Uptime Kuma",
            "host": "uptimekuma",
            "port": 3001,
            "icon": "https://app.cdn.olares.com/appstore/uptimekuma/icon.png",
        }
    ]
    assert spec["requirements"]["limits"] == {"cpu": "1", "memory": "4Gi", "disk": "256Mi"}
    assert spec["dependencies"] == [{"app": "olares", "version": ">=1.12.6-0", "type": "system"}]
    assert spec["license"] == "MIT"

    info = ok(market(cluster, "info", "uptimekuma", "--source", olares))
    assert "Title:" in info
    assert "Uptime Kuma" in info
    assert "uptimekuma:3001" in info
    assert "olares >=1.12.6-0 (system)" in info

    if corpus:
        kps = objects.get("marketapps", f"{olares}.kube-prometheus-stack")["spec"]  # type: ignore[index]
        assert (kps["categories"], kps["license"]) == (["monitoring-logging"], "Apache-2.0")
        assert [link["name"] for link in kps["links"]] == [
            "Chart Source",
            "Upstream Project",
            "Upgrade Process",
        ]
        categories = {
            c.app: (objects.get("marketapps", f"{olares}.{c.app}") or {})["spec"]["categories"]
            for c in corpus
        }
        assert categories["redis"] == categories["postgresql"] == ["database"]
        assert categories["memos"] == ["Productivity"]  # from its manifest
        info = ok(market(cluster, "info", "kube-prometheus-stack", "--source", olares))
        assert "License:" in info
        assert "Apache-2.0" in info
        assert "  Upgrade Process: https://github.com/prometheus-community" in info

    # The index changes (one new chart): only the new digest is read, nothing already known.
    chart_repo.add_chart("hello", "0.1.0")
    request_reconcile(objects, "marketsources", olares)
    wait_for(
        lambda: objects.get("marketapps", f"{olares}.hello"), timeout=90, what="the new chart in the catalog"
    )
    wait_for(lambda: synced(objects, olares), timeout=60, what="Olares source Ready again")
    assert chart_gets(chart_repo) == read_once + 1


def deployment(k8s: client.ApiClient, namespace: str) -> client.V1Deployment | None:
    try:
        return client.AppsV1Api(k8s).read_namespaced_deployment("uptimekuma", namespace)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def data_path(k8s: client.ApiClient, namespace: str) -> str | None:
    found = deployment(k8s, namespace)
    if found is None:
        return None
    return str(found.spec.template.spec.volumes[0].host_path.path)


def test_olares_chart_needs_the_sources_values_and_follows_them(
    objects: Objects,
    k8s: client.ApiClient,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    source_name: Any,
    namespace: str,
) -> None:
    package_olares(chart_repo)
    chart_repo.reindex()
    name = source_name()
    create_source(objects, name, chart_repo.url)
    wait_for(lambda: synced(objects, name), timeout=90, what="source Ready")

    # Without the values Olares injects, helm cannot render it: a clear, stalled condition.
    install(objects, namespace, "kuma", source=name, app="uptimekuma")

    def refused() -> dict[str, Any] | None:
        c = condition(objects.get("appinstalls", "kuma", namespace))
        return c if c and c["status"] == "False" and c["reason"] == "InjectedValuesMissing" else None

    cond = wait_for(refused, timeout=120, what="Ready=False InjectedValuesMissing")
    assert "userspace" in cond["message"]
    assert "MarketSource's spec.values" in cond["message"]
    assert condition(objects.get("appinstalls", "kuma", namespace), "Stalled") is not None
    wait_for(
        lambda: any(r == "InjectedValuesMissing" for _, r, _ in objects.events_for("kuma", namespace)),
        timeout=30,
        what="a Warning Event",
    )

    # The admin gives them once, on the source: the app is woken (no retry request) and installs.
    objects.patch("marketsources", name, {"spec": {"values": INJECTED}})
    wait_for(
        lambda: running(objects, namespace, "kuma"), timeout=180, what="installed with the source's values"
    )
    assert data_path(k8s, namespace) == "/tmp/olares/data/kuma"

    # New source values: its apps upgrade, once.
    objects.patch("marketsources", name, {"spec": {"values": {"userspace": {"appData": "/srv/olares"}}}})
    wait_for(
        lambda: data_path(k8s, namespace) == "/srv/olares/kuma", timeout=180, what="upgraded to new values"
    )
    app = wait_for(lambda: running(objects, namespace, "kuma"), timeout=120, what="Running after the upgrade")
    ops = [(h["operation"], h["result"]) for h in app["status"]["history"]]
    assert ops[:2] == [("upgrade", "Succeeded"), ("install", "Succeeded")]

    # The AppInstall's own values win over the source's.
    objects.patch("appinstalls", "kuma", {"spec": {"values": {"userspace": {"appData": "/mine"}}}}, namespace)
    wait_for(lambda: data_path(k8s, namespace) == "/mine/kuma", timeout=180, what="the app's own value wins")
    app = wait_for(lambda: running(objects, namespace, "kuma"), timeout=120, what="Running")
    ops = [h["operation"] for h in app["status"]["history"] if h["result"] == "Succeeded"]
    assert ops.count("upgrade") == 2, ops  # one per change, none more


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"x": value}
    return value


def test_source_values_beyond_the_bounds_are_refused_clearly(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: Any, namespace: str
) -> None:
    package_olares(chart_repo)
    chart_repo.reindex()
    name = source_name()
    create_source(objects, name, chart_repo.url, values={"userspace": deep(40)})

    def refused(obj: dict[str, Any] | None) -> dict[str, Any] | None:
        c = condition(obj)
        return c if c and c["status"] == "False" and c["reason"] == "InvalidValues" else None

    cond = wait_for(
        lambda: refused(objects.get("marketsources", name)), timeout=90, what="source InvalidValues"
    )
    assert "nested more than 32 levels" in cond["message"]
    assert objects.get("marketapps", f"{name}.uptimekuma") is not None  # the catalog is synced anyway

    install(objects, namespace, "kuma", source=name, app="uptimekuma")
    cond = wait_for(
        lambda: refused(objects.get("appinstalls", "kuma", namespace)), timeout=90, what="app InvalidValues"
    )
    assert "the MarketSource's spec.values is nested more than 32 levels" in cond["message"]
    assert condition(objects.get("appinstalls", "kuma", namespace), "Stalled") is not None
