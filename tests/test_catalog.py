"""MarketSource: a real chart repository on 127.0.0.1 becomes a browsable catalog of MarketApps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from support.apps import create_source, handled, request_reconcile
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for

PAID = {
    "kubemart.io/title": "Note Keeper",
    "kubemart.io/categories": "productivity, notes",
    "kubemart.io/price": "4.99 USD",
    "kubemart.io/developer": "Acme Apps",
    "kubemart.io/requirements": "{cpu: 100m, memory: 128Mi, architectures: [amd64, arm64]}",
}


@pytest.fixture
def source_name(objects: Objects) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    objects.delete("marketsources", name)


def apps_of(objects: Objects, source: str) -> dict[str, dict]:
    return {
        a["metadata"]["name"]: a for a in objects.list("marketapps", labels=f"kubemart.io/source={source}")
    }


def test_source_sync_materialises_marketapps_with_catalog_fields(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    chart_repo.add_chart("notes", "1.0.0", annotations=PAID, reindex=False)
    chart_repo.add_chart("notes", "1.1.0", annotations=PAID, reindex=False)
    chart_repo.add_chart("notes", "2.0.0-rc.1", annotations=PAID, reindex=False)
    chart_repo.add_chart("blog", "0.3.0")
    create_source(objects, source_name, chart_repo.url)

    src = wait_for(
        lambda: (
            ready(objects.get("marketsources", source_name)) and objects.get("marketsources", source_name)
        ),
        timeout=60,
        what="source Ready",
    )
    assert src["status"]["appCount"] == 2
    assert src["status"]["revision"].startswith("sha256:")
    apps = apps_of(objects, source_name)
    assert sorted(apps) == [f"{source_name}.blog", f"{source_name}.notes"]

    notes = apps[f"{source_name}.notes"]
    spec = notes["spec"]
    assert spec["title"] == "Note Keeper"
    assert spec["categories"] == ["productivity", "notes"]
    assert spec["latestVersion"] == "1.1.0", "a prerelease is not the latest stable version"
    assert [v["version"] for v in spec["versions"]] == ["2.0.0-rc.1", "1.1.0", "1.0.0"]
    assert all(v["digest"] and v["urls"] for v in spec["versions"])
    assert spec["price"] == {"amount": "4.99", "currency": "USD"}
    assert spec["developer"] == {"name": "Acme Apps"}
    assert spec["requirements"] == {"cpu": "100m", "memory": "128Mi", "architectures": ["amd64", "arm64"]}
    assert notes["metadata"]["labels"] == {
        "kubemart.io/source": source_name,
        "kubemart.io/app": "notes",
        "kubemart.io/category": "productivity",
    }
    owner = notes["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "MarketSource",
        source_name,
        src["metadata"]["uid"],
    )
    assert "price" not in apps[f"{source_name}.blog"]["spec"], "no price annotation means free"


def test_unchanged_repository_costs_one_request_and_no_write(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    chart_repo.add_chart("blog", "0.3.0")
    create_source(objects, source_name, chart_repo.url)
    wait_for(lambda: ready(objects.get("marketsources", source_name)), timeout=60, what="source Ready")
    versions = {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source_name).items()}
    seen = len(chart_repo.log.entries)

    stamp = request_reconcile(objects, "marketsources", source_name)
    wait_for(
        lambda: handled(objects, "marketsources", source_name, stamp), timeout=30, what="re-sync handled"
    )

    new = chart_repo.log.entries[seen:]
    assert [p for _, p, _ in new] == ["/index.yaml"], "one request, for the index only"
    assert new[0][2].get("If-None-Match"), "the request is conditional"
    assert {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source_name).items()} == versions


def test_changed_chart_rewrites_only_its_app_and_removed_chart_is_deleted(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    for app in ("alpha", "beta", "gamma"):
        chart_repo.add_chart(app, "1.0.0", reindex=False)
    chart_repo.reindex()
    create_source(objects, source_name, chart_repo.url)
    wait_for(lambda: ready(objects.get("marketsources", source_name)), timeout=60, what="source Ready")
    before = {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source_name).items()}

    chart_repo.add_chart("alpha", "1.1.0", reindex=False)
    chart_repo.remove_chart("gamma")
    stamp = request_reconcile(objects, "marketsources", source_name)
    src = wait_for(lambda: handled(objects, "marketsources", source_name, stamp), timeout=30, what="re-sync")

    after = apps_of(objects, source_name)
    assert sorted(after) == [f"{source_name}.alpha", f"{source_name}.beta"]
    assert after[f"{source_name}.alpha"]["spec"]["latestVersion"] == "1.1.0"
    assert after[f"{source_name}.alpha"]["metadata"]["resourceVersion"] != before[f"{source_name}.alpha"]
    assert after[f"{source_name}.beta"]["metadata"]["resourceVersion"] == before[f"{source_name}.beta"]
    assert src["status"]["appCount"] == 2


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        pytest.param("server-error", "RepositoryServerError", id="server error"),
        pytest.param("not-found", "IndexNotFound", id="index not found"),
        pytest.param("garbage", "InvalidIndex", id="malformed index"),
    ],
)
def test_broken_repository_reports_and_keeps_last_good_catalog(
    objects: Objects,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    source_name: str,
    breakage: str,
    reason: str,
) -> None:
    chart_repo.add_chart("blog", "0.3.0")
    create_source(objects, source_name, chart_repo.url)
    wait_for(lambda: ready(objects.get("marketsources", source_name)), timeout=60, what="source Ready")

    if breakage == "server-error":
        chart_repo.fail(500)
    elif breakage == "not-found":
        chart_repo.fail(404)
    else:
        chart_repo.serve_garbage(True)
    request_reconcile(objects, "marketsources", source_name)

    def broken() -> dict | None:
        c = condition(objects.get("marketsources", source_name))
        return c if c and c["status"] == "False" else None

    cond = wait_for(broken, timeout=30, what=f"Ready=False {reason}")
    assert cond["reason"] == reason
    assert "kept" in cond["message"], cond["message"]
    assert list(apps_of(objects, source_name)) == [f"{source_name}.blog"], "the last good catalog stays"
    # An Event says so (posted just after the status write).
    wait_for(
        lambda: any(r == reason for _, r, _ in objects.events_for(source_name)), timeout=20, what="Event"
    )

    chart_repo.fail(None)
    chart_repo.serve_garbage(False)
    request_reconcile(objects, "marketsources", source_name)
    wait_for(lambda: ready(objects.get("marketsources", source_name)), timeout=60, what="recovered")


def test_deleting_a_source_deletes_its_catalog(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    chart_repo.add_chart("blog", "0.3.0")
    create_source(objects, source_name, chart_repo.url)
    wait_for(lambda: apps_of(objects, source_name), timeout=60, what="catalog")
    objects.delete("marketsources", source_name)
    # The garbage collector works through its queue in order; a large catalog deleted earlier can be ahead.
    wait_for(lambda: not apps_of(objects, source_name), timeout=300, what="catalog garbage-collected")


def test_private_repository_uses_the_secret_and_says_when_it_is_missing(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    source_name: str,
    namespace: str,
) -> None:
    chart_repo.add_chart("blog", "0.3.0")
    chart_repo.require_basic_auth("reader", "s3cret-value")
    create_source(
        objects, source_name, chart_repo.url, secretRef={"name": "repo-auth", "namespace": namespace}
    )

    def not_ready_because(reason: str) -> bool:
        c = condition(objects.get("marketsources", source_name))
        return bool(c and c["status"] == "False" and c["reason"] == reason)

    wait_for(lambda: not_ready_because("SecretNotFound"), timeout=30, what="SecretNotFound")
    client.CoreV1Api(k8s).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="repo-auth"),
            string_data={"username": "reader", "password": "wrong"},
        ),
    )
    request_reconcile(objects, "marketsources", source_name)
    wait_for(lambda: not_ready_because("RepositoryAuthFailed"), timeout=30, what="RepositoryAuthFailed")
    client.CoreV1Api(k8s).patch_namespaced_secret(
        "repo-auth", namespace, {"stringData": {"password": "s3cret-value"}}
    )
    request_reconcile(objects, "marketsources", source_name)
    wait_for(
        lambda: ready(objects.get("marketsources", source_name)),
        timeout=30,
        what="Ready with the right password",
    )
    assert list(apps_of(objects, source_name)) == [f"{source_name}.blog"]
    assert "s3cret-value" not in operator.log(), "the secret never reaches the log"
    assert all("s3cret-value" not in m for _, _, m in objects.events_for(source_name))
