"""Dependencies between apps, against the real API server and helm (docs/dependencies.md).

A chain created backwards installs in dependency order (helm's own record of when each release was
first deployed says so); a cycle is Stalled and named, and installs once broken; an app others
depend on keeps its release until they are gone; a catalog dependency missing from the namespace
is reported, then satisfied by installing it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from support.apps import create_source, install, running
from support.cluster import Cluster
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for
from test_health_checks import check
from test_kubectl_market import market


@pytest.fixture
def deps_catalog(objects: Objects, operator: OperatorProcess, chart_repo: ChartRepo) -> Iterator[str]:
    """A source with `base` and `web`, whose chart says it needs base (kubemart.io/dependencies)."""
    name = f"d-{uuid.uuid4().hex[:8]}"
    chart_repo.add_chart("base", "1.2.0", reindex=False)
    chart_repo.add_chart("web", "0.1.0", annotations={"kubemart.io/dependencies": "base>=1.0, Bad!"})
    create_source(objects, name, chart_repo.url)
    wait_for(lambda: ready(objects.get("marketsources", name)), timeout=60, what="source Ready")
    yield name
    objects.delete("marketsources", name)


def reason_is(objects: Objects, namespace: str, name: str, reason: str, type_: str = "Ready") -> dict | None:
    obj = objects.get("appinstalls", name, namespace)
    c = condition(obj, type_)
    return obj if c and c.get("reason") == reason else None


def first_deployed(cluster: Cluster, namespace: str, release: str) -> datetime:
    """When helm first deployed the release, from its own record (nanoseconds)."""
    out = cluster.run("helm", "status", release, "-n", namespace, "-o", "json")
    stamp = json.loads(out.stdout)["info"]["first_deployed"]
    # Go writes up to nine fractional digits; Python reads six.
    head, _, rest = stamp.partition(".")
    frac = "".join(ch for ch in rest if ch.isdigit())[:6]
    zone = rest[len("".join(ch for ch in rest if ch.isdigit())) :]
    return datetime.fromisoformat(f"{head}.{frac or '0'}{zone.replace('Z', '+00:00')}")


def has_release(cluster: Cluster, namespace: str, release: str) -> bool:
    out = cluster.run("helm", "status", release, "-n", namespace, check=False)
    return out.returncode == 0


def test_a_chain_created_backwards_installs_in_order_and_deletion_waits_for_dependents(
    cluster: Cluster, objects: Objects, deps_catalog: str, namespace: str
) -> None:
    app: dict[str, Any] = {"source": deps_catalog, "app": "base", "timeout": "60s"}
    install(objects, namespace, "c", **app, dependsOn=[{"name": "b"}])
    waiting = wait_for(
        lambda: reason_is(objects, namespace, "c", "DependencyNotReady"), timeout=30, what="c waits"
    )
    message = condition(waiting)["message"]  # type: ignore[index]
    assert f"{namespace}/b" in message, message
    assert "does not exist" in message, message
    assert condition(waiting, "Reconciling") is not None, "waiting is progress, not a failure"
    check(cluster, "appinstall-dependency-not-ready", waiting)
    install(objects, namespace, "b", **app, dependsOn=[{"name": "a", "namespace": namespace}])
    install(objects, namespace, "a", **app)
    for name in ("a", "b", "c"):
        wait_for(lambda n=name: running(objects, namespace, n), timeout=60, what=f"{name} Running")
    a, b, c = (first_deployed(cluster, namespace, n) for n in ("a", "b", "c"))
    assert a < b < c, f"helm first deployed a at {a}, b at {b}, c at {c}"

    # Deleting a while b depends on it: its release stays, and it says why.
    objects.delete("appinstalls", "a", namespace)
    held = wait_for(
        lambda: reason_is(objects, namespace, "a", "DependentsExist"), timeout=30, what="a waits for b"
    )
    assert f"{namespace}/b" in condition(held)["message"]  # type: ignore[index]
    assert has_release(cluster, namespace, "a")
    wait_for(
        lambda: ("Warning", "DependentsExist") in [e[:2] for e in objects.events_for("a", namespace)],
        timeout=20,
        what="a DependentsExist Event",
    )
    check(cluster, "appinstall-dependents-exist", held)
    # c still depends on b: b waits too once deleted, and the dependents go in order.
    objects.delete("appinstalls", "b", namespace)
    wait_for(lambda: reason_is(objects, namespace, "b", "DependentsExist"), timeout=30, what="b waits")
    assert has_release(cluster, namespace, "a")
    assert has_release(cluster, namespace, "b")
    objects.delete("appinstalls", "c", namespace)
    for name in ("c", "b", "a"):
        wait_for(
            lambda n=name: objects.get("appinstalls", n, namespace) is None, timeout=60, what=f"{name} gone"
        )
    assert not has_release(cluster, namespace, "a")


def test_a_cycle_is_stalled_and_named_then_installs_once_broken(
    cluster: Cluster, objects: Objects, deps_catalog: str, namespace: str
) -> None:
    app: dict[str, Any] = {"source": deps_catalog, "app": "base", "timeout": "60s"}
    install(objects, namespace, "cx", **app, dependsOn=[{"name": "cy"}])
    install(objects, namespace, "cy", **app, dependsOn=[{"name": "cz"}])
    install(objects, namespace, "cz", **app, dependsOn=[{"name": "cx"}])
    for name, cycle in (
        ("cx", "cx -> cy -> cz -> cx"),
        ("cy", "cy -> cz -> cx -> cy"),
        ("cz", "cz -> cx -> cy -> cz"),
    ):
        stalled = wait_for(
            lambda n=name: reason_is(objects, namespace, n, "DependencyCycle", "Stalled"),
            timeout=30,
            what=f"{name} Stalled",
        )
        message = condition(stalled)["message"]  # type: ignore[index]
        named = " -> ".join(f"{namespace}/{part}" for part in cycle.split(" -> "))
        assert named in message, message
    check(cluster, "appinstall-dependency-cycle", stalled)
    assert not has_release(cluster, namespace, "cx")
    # Break it: cz depends on nothing. All three install, cz first ("y" would be YAML's true: not a name).
    objects.patch("appinstalls", "cz", {"spec": {"dependsOn": []}}, namespace)
    for name in ("cz", "cy", "cx"):
        wait_for(lambda n=name: running(objects, namespace, n), timeout=60, what=f"{name} Running")
    assert first_deployed(cluster, namespace, "cz") < first_deployed(cluster, namespace, "cx")


def test_a_catalog_dependency_missing_is_reported_then_satisfied(
    cluster: Cluster, objects: Objects, deps_catalog: str, namespace: str
) -> None:
    entry = objects.get("marketapps", f"{deps_catalog}.web")
    assert entry is not None
    assert entry["spec"]["dependencies"] == [
        {"app": "base", "version": ">=1.0", "type": "application", "mandatory": True}
    ]
    wait_for(
        lambda: "DependenciesIgnored" in [e[1] for e in objects.events_for(deps_catalog)],
        timeout=20,
        what="the source's DependenciesIgnored Event",
    )
    install(objects, namespace, "web", source=deps_catalog, app="web", timeout="60s")
    missing = wait_for(
        lambda: reason_is(objects, namespace, "web", "DependencyMissing"), timeout=30, what="web missing base"
    )
    message = condition(missing)["message"]  # type: ignore[index]
    assert "base >=1.0" in message, message
    assert "kubectl market install base" in message, message
    assert not has_release(cluster, namespace, "web")
    install(objects, namespace, "db", source=deps_catalog, app="base", timeout="60s")
    wait_for(lambda: running(objects, namespace, "web"), timeout=60, what="web Running")
    assert first_deployed(cluster, namespace, "db") < first_deployed(cluster, namespace, "web")


def test_kubectl_market_install_offers_the_missing_dependencies(
    cluster: Cluster, objects: Objects, deps_catalog: str, namespace: str
) -> None:
    # Not on a terminal and not asked: the app is created and waits; the note says what is missing.
    # --source: MarketApps of earlier tests' sources (deleted, garbage collection pending) offer web too.
    plain = market(
        cluster, "install", "web", "--source", deps_catalog, "--name", "web-alone", "-n", namespace
    )
    assert plain.returncode == 0, plain.stderr
    assert "web needs base >=1.0, not installed" in plain.stderr
    assert objects.get("appinstalls", "base", namespace) is None
    # Asked: base is installed first and named in dependsOn; both converge.
    asked = market(
        cluster,
        "install",
        "web",
        "--source",
        deps_catalog,
        "--with-dependencies",
        "--depends-on",
        "web-alone",
        "-n",
        namespace,
    )
    assert asked.returncode == 0, asked.stderr
    assert f"appinstall.kubemart.io/base created in namespace {namespace} (a dependency)" in asked.stderr
    web = objects.get("appinstalls", "web", namespace)
    assert web is not None
    assert web["spec"]["dependsOn"] == [{"name": "web-alone"}, {"name": "base"}]
    base = objects.get("appinstalls", "base", namespace)
    assert base is not None
    assert base["spec"]["version"] == ">=1.0"
    for name in ("base", "web-alone", "web"):
        wait_for(lambda n=name: running(objects, namespace, n), timeout=60, what=f"{name} Running")
