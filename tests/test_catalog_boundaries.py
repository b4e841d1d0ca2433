"""Catalogs at the trust boundary (issue "Trust boundaries", points 2, 6, 8, 10, 11 and 12).

Real chart repositories on 127.0.0.1 that misbehave as hostile or broken servers do, the real API
server with the generated CRDs, and the real operator process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from kubernetes.client.rest import ApiException

from support.apps import create_source, handled, request_reconcile
from support.bombs import MiB, alias_bomb, double_gzip
from support.cluster import ROOT, Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for


@pytest.fixture
def source_name(objects: Objects) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    objects.delete("marketsources", name)


def apps_of(objects: Objects, source: str) -> dict[str, dict[str, Any]]:
    return {
        a["metadata"]["name"]: a for a in objects.list("marketapps", labels=f"kubemart.io/source={source}")
    }


def not_ready(objects: Objects, name: str) -> dict[str, Any] | None:
    c = condition(objects.get("marketsources", name))
    return c if c and c["status"] == "False" else None


def synced(objects: Objects, name: str, chart_repo: ChartRepo, *charts: str, **spec: Any) -> None:
    for chart in charts:
        chart_repo.add_chart(chart, "1.0.0", reindex=False)
    chart_repo.reindex()
    create_source(objects, name, chart_repo.url, **spec)
    wait_for(lambda: ready(objects.get("marketsources", name)), timeout=60, what="source Ready")


def event(objects: Objects, name: str, reason: str) -> str:
    """The message of the source's Event with `reason`; Events are posted just after status is written."""
    return wait_for(
        lambda: next((m for _, r, m in objects.events_for(name) if r == reason), None),
        timeout=20,
        what=f"Event {reason}",
    )


def dry_run_create(objects: Objects, body: dict[str, Any]) -> str | None:
    """The API server's refusal of creating `body`, or None when it would be accepted."""
    try:
        objects.custom.create_cluster_custom_object(
            "kubemart.io",
            "v1alpha1",
            "marketsources",
            {"apiVersion": "kubemart.io/v1alpha1", **body},
            dry_run="All",
        )
    except ApiException as exc:
        return str(exc.body)
    return None


def source_body(name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "MarketSource", "metadata": {"name": name}, "spec": {"url": "https://c.example", **spec}}


# --- point 2: names collision-free by construction; never take over another's object ------------


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        pytest.param(source_body("acme.pro"), "must be one DNS label", id="dotted name"),
        pytest.param(source_body("Acme"), "must be one DNS label", id="uppercase name"),
        pytest.param(source_body("hot", interval="0s"), "interval must be at least 30s", id="interval 0s"),
        pytest.param(source_body("hot", interval="29s"), "interval must be at least 30s", id="interval 29s"),
        pytest.param(
            source_body("long", url="https://c.example/" + "a" * 3000),
            "may not be more than 2048",
            id="long url",
        ),
        pytest.param(
            source_body("long", secretRef={"name": "s" * 300, "namespace": "n"}),
            "may not be more than 253",
            id="long secret name",
        ),
    ],
)
def test_admission_refuses_names_intervals_and_strings_the_catalog_cannot_take(
    objects: Objects, body: dict[str, Any], refusal: str
) -> None:
    answer = dry_run_create(objects, body)
    assert answer is not None, "accepted"
    assert refusal in answer


def test_admission_accepts_a_plain_source_with_the_minimum_interval(objects: Objects) -> None:
    assert dry_run_create(objects, source_body("acme-pro", interval="30s")) is None


def test_a_sync_never_takes_over_a_marketapp_it_does_not_control(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    # A free app planted under the names the catalog will want: one labelled as the source's own
    # (so the sync lists it), one not (so the sync finds it only when creating).
    planted = {
        f"{source_name}.blog": {"kubemart.io/source": source_name},
        f"{source_name}.wiki": {},
    }
    for name, labels in planted.items():
        objects.create(
            "marketapps",
            {
                "kind": "MarketApp",
                "metadata": {"name": name, "labels": labels},
                "spec": {"source": source_name, "app": name.split(".", 1)[1], "title": "planted"},
            },
        )
    try:
        before = {n: objects.get("marketapps", n)["metadata"]["resourceVersion"] for n in planted}  # type: ignore[index]
        synced(objects, source_name, chart_repo, "blog", "wiki", "notes")

        src = objects.get("marketsources", source_name)
        message = condition(src)["message"]  # type: ignore[index]
        assert "2 names are held by objects this source does not control" in message, message
        assert src["status"]["appCount"] == 1  # type: ignore[index]
        for name in planted:
            obj = objects.get("marketapps", name)
            assert obj["metadata"]["resourceVersion"] == before[name], f"{name} was written"  # type: ignore[index]
            assert not obj["metadata"].get("ownerReferences")  # type: ignore[index]
        assert objects.get("marketapps", f"{source_name}.notes") is not None
        taken = event(objects, source_name, "NameTaken")
        assert f"{source_name}.blog" in taken
        assert f"{source_name}.wiki" in taken

        # Once the stray object is gone, the source writes its own in its place.
        objects.delete("marketapps", f"{source_name}.blog")
        restored = wait_for(
            lambda: (
                (o := objects.get("marketapps", f"{source_name}.blog"))
                and o["metadata"].get("ownerReferences")
                and o
            ),
            timeout=30,
            what="the source's own blog",
        )
        assert restored["metadata"]["ownerReferences"][0]["uid"] == src["metadata"]["uid"]  # type: ignore[index]
        assert restored["spec"]["title"] == "blog"
    finally:
        for name in planted:
            objects.delete("marketapps", name)


# --- point 12: a deleted MarketApp is restored though the index is unchanged ---------------------


def test_a_deleted_marketapp_comes_back_though_the_index_is_unchanged(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    synced(objects, source_name, chart_repo, "blog", "notes")
    versions = {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source_name).items()}

    objects.delete("marketapps", f"{source_name}.blog")

    back = wait_for(
        lambda: objects.get("marketapps", f"{source_name}.blog"), timeout=30, what="blog restored"
    )
    assert back["spec"]["app"] == "blog"
    after = apps_of(objects, source_name)
    assert after[f"{source_name}.notes"]["metadata"]["resourceVersion"] == versions[f"{source_name}.notes"]

    # And an unchanged index still costs one conditional request and no write afterwards.
    seen = len(chart_repo.log.entries)
    stamp = request_reconcile(objects, "marketsources", source_name)
    wait_for(lambda: handled(objects, "marketsources", source_name, stamp), timeout=30, what="re-sync")
    assert [p for _, p, _ in chart_repo.log.entries[seen:]] == ["/index.yaml"]
    assert {n: a["metadata"]["resourceVersion"] for n, a in apps_of(objects, source_name).items()} == {
        n: a["metadata"]["resourceVersion"] for n, a in after.items()
    }


# --- point 6: decompression and alias bombs -------------------------------------------------------


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return double_gzip(1024 * MiB)  # 1 GiB of zeros, a few KB on the wire


@pytest.mark.parametrize("bomb", ["double gzip", "alias bomb"])
def test_index_bombs_are_refused_and_the_last_good_catalog_is_kept(
    objects: Objects,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    source_name: str,
    gzip_bomb: bytes,
    bomb: str,
) -> None:
    synced(objects, source_name, chart_repo, "blog")
    if bomb == "double gzip":
        chart_repo.serve_index_bytes(gzip_bomb, {"Content-Encoding": "gzip, gzip"})
        reason = "IndexTooLarge"
    else:
        chart_repo.serve_index_bytes(alias_bomb())
        reason = "InvalidIndex"
    request_reconcile(objects, "marketsources", source_name)

    cond = wait_for(lambda: not_ready(objects, source_name), timeout=60, what=f"Ready=False {reason}")
    assert cond["reason"] == reason
    assert "The last good catalog (1 app) is kept" in cond["message"]
    assert len(cond["message"]) < 1024
    assert list(apps_of(objects, source_name)) == [f"{source_name}.blog"]
    event(objects, source_name, reason)
    assert operator.healthy(), "the operator survived"
    assert "Traceback" not in operator.log()[-20000:]

    chart_repo.serve_index_bytes(None)
    request_reconcile(objects, "marketsources", source_name)
    wait_for(lambda: ready(objects.get("marketsources", source_name)), timeout=60, what="recovered")


# --- point 11: what a catalog server sends is cut before it becomes a MarketApp ------------------


def test_huge_catalog_metadata_is_cut_to_the_marketapps_bounds(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    chart_repo.add_chart(
        "blog",
        "1.0.0",
        description="d" * 100_000,
        annotations={
            "kubemart.io/title": "t" * 5000,
            "kubemart.io/categories": ",".join(f"c{i}" for i in range(500)),
        },
    )
    create_source(objects, source_name, chart_repo.url)
    wait_for(lambda: ready(objects.get("marketsources", source_name)), timeout=60, what="source Ready")
    spec = objects.get("marketapps", f"{source_name}.blog")["spec"]  # type: ignore[index]
    assert len(spec["description"]) == 1024
    assert spec["description"].endswith("…")
    assert len(spec["title"]) == 128
    assert len(spec["categories"]) == 10


# --- point 8: a slow repository never holds a source; a new spec or a retry cancels the sync ------


def test_a_corrected_url_or_a_retry_request_does_not_wait_for_a_trickling_repository(
    objects: Objects,
    operator: OperatorProcess,
    chart_repo: ChartRepo,
    source_name: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    chart_repo.trickle_index(1.0)
    create_source(objects, source_name, chart_repo.url)
    # At once a status says the sync is under way, however long the repository takes.
    reconciling = wait_for(
        lambda: condition(objects.get("marketsources", source_name), "Reconciling"),
        timeout=20,
        what="Reconciling",
    )
    assert reconciling["status"] == "True"
    assert chart_repo.url in reconciling["message"]

    first = chart_repo.index_requests()
    request_reconcile(objects, "marketsources", source_name)
    wait_for(lambda: chart_repo.index_requests() > first, timeout=20, what="a retry request starts over")

    good = ChartRepo(tmp_path_factory.mktemp("good"))
    try:
        good.add_chart("blog", "1.0.0")
        started = time.monotonic()
        objects.patch("marketsources", source_name, {"spec": {"url": good.url}})
        wait_for(
            lambda: ready(objects.get("marketsources", source_name)),
            timeout=30,
            what="Ready from the new URL",
        )
        assert time.monotonic() - started < 30, "not held until the 60 s deadline"
        assert list(apps_of(objects, source_name)) == [f"{source_name}.blog"]
    finally:
        good.close()


# --- point 7 of the brief: a payment key that cannot verify anything ------------------------------


def test_an_unreadable_payment_key_stalls_the_source_but_its_catalog_syncs(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    chart_repo.add_chart("blog", "1.0.0")
    # Passes the schema's pattern, but is 33 bytes, not a 32-byte Ed25519 key.
    key = "A" * 44
    create_source(
        objects,
        source_name,
        chart_repo.url,
        payment={
            "url": "https://pay.example",
            "secretRef": {"name": "s", "namespace": "default"},
            "publicKey": key,
        },
    )
    cond = wait_for(lambda: not_ready(objects, source_name), timeout=60, what="Ready=False")
    assert cond["reason"] == "InvalidPublicKey"
    assert "base64" in cond["message"]
    stalled = condition(objects.get("marketsources", source_name), "Stalled")
    assert stalled is not None
    assert stalled["status"] == "True"
    wait_for(lambda: apps_of(objects, source_name), timeout=30, what="the catalog synced all the same")
    event(objects, source_name, "InvalidPublicKey")


# --- objects written before the admission rules existed ----------------------------------------


@pytest.fixture
def rules_lifted(
    cluster: Cluster, objects: Objects, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The MarketSource CRD without its CEL rules for the test's duration, as before they existed."""
    crd_file = ROOT / "crds" / "marketsources.kubemart.io.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema.pop("x-kubernetes-validations")
    schema["properties"]["spec"].pop("x-kubernetes-validations")
    lifted = tmp_path_factory.mktemp("crd") / "marketsources.yaml"
    lifted.write_text(yaml.safe_dump(crd))
    cluster.run("kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(lifted))
    wait_for(
        lambda: dry_run_create(objects, source_body("a.b", interval="0s")) is None,
        timeout=30,
        what="rules lifted",
    )
    try:
        yield
    finally:
        cluster.run("kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(crd_file))
        wait_for(
            lambda: dry_run_create(objects, source_body("a.b")) is not None, timeout=30, what="rules back"
        )


def test_sources_that_predate_the_rules_are_held_to_them(
    objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo, rules_lifted: None
) -> None:
    chart_repo.add_chart("vaultlite", "1.0.0")
    suffix = uuid.uuid4().hex[:6]
    dotted, hot = f"acme-{suffix}.pro", f"hot-{suffix}"
    try:
        create_source(objects, dotted, chart_repo.url)
        create_source(objects, hot, chart_repo.url, interval="0s")

        # A dotted name could collide with another source's MarketApps: nothing is written for it,
        # and its status says why (the name rule is checked at creation, so the status write passes).
        cond = wait_for(lambda: not_ready(objects, dotted), timeout=60, what="InvalidSourceName")
        assert cond["reason"] == "InvalidSourceName"
        assert condition(objects.get("marketsources", dotted), "Stalled")["status"] == "True"  # type: ignore[index]
        assert objects.get("marketapps", f"{dotted}.vaultlite") is None

        # `interval: 0s` polled about 25 times a second; now it syncs at the operator's minimum.
        src = wait_for(
            lambda: (s := objects.get("marketsources", hot)) and ready(s) and s, timeout=60, what="Ready"
        )
        assert "under the minimum of 30s" in condition(src)["message"]  # type: ignore[index]
        before = chart_repo.index_requests()
        watch_until = time.monotonic() + 4
        while time.monotonic() < watch_until:
            assert chart_repo.index_requests() - before <= 1, "the repository is polled without rest"
            time.sleep(0.2)
    finally:
        objects.delete("marketsources", dotted)
        objects.delete("marketsources", hot)


# --- deadlines, with an operator whose deadline is short ---------------------------------------


@pytest.fixture
def quick_operator(cluster: Cluster, shared_operator_paused: None) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, extra_env={"KUBEMART_REPOSITORY_DEADLINE": "3"})
    op.start()
    yield op
    op.stop()


def test_a_trickling_repository_fails_at_the_deadline_and_says_so(
    objects: Objects, quick_operator: OperatorProcess, chart_repo: ChartRepo, source_name: str
) -> None:
    chart_repo.trickle_index(1.0)
    create_source(objects, source_name, chart_repo.url)
    cond = wait_for(lambda: not_ready(objects, source_name), timeout=30, what="RepositoryTimeout")
    assert cond["reason"] == "RepositoryTimeout"
    assert "within 3s" in cond["message"]
    event(objects, source_name, "RepositoryTimeout")
    assert httpx.get(f"http://127.0.0.1:{quick_operator.health_port}/healthz", timeout=5).status_code == 200
