"""Dependencies between AppInstalls (release/dependencies.py), the catalog annotation, and what the
AppInstall Store wakes when a dependency changes: all pure, no cluster."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kubemart.app import app_indexes
from kubemart.catalog.entries import catalog_from_charts
from kubemart.catalog.metadata import dependencies as parse_dependencies
from kubemart.models.marketapp import Dependency
from kubemart.release import summarize
from kubemart.release.dependencies import (
    Wakes,
    blocking_dependents,
    edges,
    find_cycle,
    not_ready,
    waiting_for,
)
from kubemart.release.outcome import Outcome
from kubemart.release.state import Action, Decision
from kubemart.runtime.index import Store
from support.release_states import state


def app(
    name: str,
    *deps: str | tuple[str, str],
    ns: str = "ns",
    ready: str | None = "True",
    reason: str = "Succeeded",
    generation: int = 1,
    observed: int | None = 1,
    app_name: str | None = None,
    version: str | None = None,
    deleting: bool = False,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    refs = [{"name": d} if isinstance(d, str) else {"namespace": d[0], "name": d[1]} for d in deps]
    status: dict[str, Any] = {"observedGeneration": observed}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": reason, "message": "m"}]
    if version:
        status["installedVersion"] = version
    meta: dict[str, Any] = {"name": name, "namespace": ns, "generation": generation, "resourceVersion": "1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if annotations:
        meta["annotations"] = annotations
    return {
        "metadata": meta,
        "spec": {"source": "s", "app": app_name or name, "dependsOn": refs},
        "status": status,
    }


def store(*bodies: dict[str, Any]) -> Store:
    s = Store(app_indexes())
    for b in bodies:
        s.record(b)
    return s


def lookup(s: Store) -> Any:
    return s.get


def of_app(s: Store) -> Any:
    return lambda ns, name: s.bodies(s.lookup("app_in_namespace", (ns, name)))


def test_edges_default_the_namespace_and_skip_garbage() -> None:
    body = app("c", "b", ("other", "a"))
    body["spec"]["dependsOn"].append({"namespace": "x"})
    assert edges(body) == [("ns", "b"), ("other", "a")]
    assert edges({"metadata": {}, "spec": {"dependsOn": "nonsense"}}) == []


@pytest.mark.parametrize(
    ("graph", "start", "cycle"),
    [
        pytest.param({"a": ["b"], "b": ["c"], "c": ["a"]}, "a", ["a", "b", "c", "a"], id="three"),
        pytest.param({"a": ["a"]}, "a", ["a", "a"], id="self"),
        pytest.param({"a": ["b"], "b": ["c"], "c": []}, "a", None, id="chain"),
        pytest.param({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, "a", None, id="diamond"),
        pytest.param({"a": ["b"], "b": ["c"], "c": ["b"]}, "a", None, id="a cycle not through start"),
        pytest.param({"a": ["x", "b"], "x": [], "b": ["a"]}, "a", ["a", "b", "a"], id="after a dead end"),
    ],
)
def test_find_cycle(graph: dict[str, list[str]], start: str, cycle: list[str] | None) -> None:
    found = find_cycle(("ns", start), lambda k: [("ns", n) for n in graph.get(k[1], [])])
    assert (None if found is None else [k[1] for k in found]) == cycle


def test_find_cycle_is_bounded() -> None:
    # An endless chain: the walk stops at its limit instead of running on.
    visited = []

    def edges_of(key: tuple[str, str]) -> list[tuple[str, str]]:
        visited.append(key)
        return [("ns", str(int(key[1]) + 1))]

    assert find_cycle(("ns", "0"), edges_of, limit=50) is None
    assert len(visited) <= 51


@pytest.mark.parametrize(
    ("body", "why"),
    [
        pytest.param(None, "does not exist", id="absent"),
        pytest.param(app("a"), None, id="ready"),
        pytest.param(
            app("a", ready="False", reason="InstallFailed"), "is not Ready (InstallFailed: m)", id="not"
        ),
        pytest.param(app("a", ready=None), "has no Ready condition yet", id="new"),
        pytest.param(app("a", generation=2), "not at its current generation", id="old generation"),
        pytest.param(app("a", deleting=True), "is being deleted", id="deleting"),
    ],
)
def test_not_ready(body: dict[str, Any] | None, why: str | None) -> None:
    found = not_ready(body)
    assert found == why if why is None else why in (found or "")


def test_waiting_for_names_the_first_dependency_not_ready() -> None:
    s = store(app("a"), app("b", ready="False", reason="Progressing"))
    waiting = waiting_for(app("c", "a", "b", "z"), lookup(s))
    assert waiting is not None
    assert waiting.reason == "DependencyNotReady"
    assert not waiting.stalled
    assert "ns/b" in waiting.message
    assert "Progressing" in waiting.message
    assert waiting_for(app("c", "a"), lookup(s)) is None
    # Another namespace's app: its reason, not its message (that is for its own namespace to read).
    elsewhere = store(app("b", ns="other", ready="False", reason="InstallFailed"))
    waiting = waiting_for(app("c", ("other", "b")), lookup(elsewhere))
    assert waiting is not None
    assert "is not Ready (InstallFailed)" in waiting.message


def test_waiting_for_names_the_cycle() -> None:
    s = store(app("a", "c"), app("b", "a"))
    waiting = waiting_for(app("c", "b"), lookup(s))
    assert waiting is not None
    assert waiting.stalled
    assert waiting.reason == "DependencyCycle"
    assert "ns/c -> ns/b -> ns/a -> ns/c" in waiting.message


def test_catalog_dependencies_missing_then_not_ready_then_satisfied() -> None:
    needs = [Dependency(app="postgresql", version=">=15", type="application", mandatory=True)]
    platform = [Dependency(app="olares", version=">=1.12", type="system", mandatory=True)]
    me = app("web")
    waiting = waiting_for(me, lookup(store()), catalog=needs + platform, of_app=of_app(store()))
    assert waiting is not None
    assert waiting.reason == "DependencyMissing"
    assert "postgresql >=15" in waiting.message
    assert "kubectl market install postgresql" in waiting.message
    old = store(app("db", app_name="postgresql", version="14.2.0"))
    waiting = waiting_for(me, lookup(old), catalog=needs, of_app=of_app(old))
    assert waiting is not None
    assert waiting.reason == "DependencyNotReady"
    assert "has version 14.2.0, not >=15" in waiting.message
    good = store(app("db", app_name="postgresql", version="15.1.0"))
    assert waiting_for(me, lookup(good), catalog=needs + platform, of_app=of_app(good)) is None
    elsewhere = store(app("db", app_name="postgresql", version="15.1.0", ns="other"))
    assert waiting_for(me, lookup(elsewhere), catalog=needs, of_app=of_app(elsewhere)) is not None
    itself = [Dependency(app="web", version=">=1", type="application", mandatory=True)]
    assert waiting_for(me, lookup(store()), catalog=itself, of_app=of_app(store())) is None
    optional = [Dependency(app="redis", type="application")]
    assert waiting_for(me, lookup(store()), catalog=optional, of_app=of_app(store())) is None


def test_deletion_waits_for_dependents_unless_the_policy_says_otherwise() -> None:
    a = app("a")
    b, c = app("b", "a"), app("c")
    s = store(a, b, c)
    assert blocking_dependents(a, s.bodies(s.lookup("dependents", ("ns", "a"))), s.get) == ["ns/b"]
    ignoring = app("a", annotations={"kubemart.io/deletion-policy": "ignore-dependents"})
    assert blocking_dependents(ignoring, [b], s.get) == []
    # A cycle deleted together: neither holds the other.
    a2, b2 = app("a", "b", deleting=True), app("b", "a", deleting=True)
    s2 = store(a2, b2)
    assert blocking_dependents(a2, [b2], s2.get) == []
    # A dependent in another namespace does not hold it: tenants cannot block each other's uninstalls.
    other = app("o", ("ns", "a"), ns="other")
    assert blocking_dependents(a, [other, b], store(a, b, other).get) == ["ns/b"]
    # A dependent being deleted that is not in a cycle still holds it until it is gone.
    b3 = app("b", "a", deleting=True)
    assert blocking_dependents(a, [b3], store(a, b3).get) == ["ns/b"]


def test_a_dependency_change_wakes_its_dependents_and_nothing_else() -> None:
    a, b, c = app("a", ready="False"), app("b", "a"), app("c")
    s = store(a, b, c)
    wakes = Wakes(s)
    assert wakes.changed(None, a) == {("ns", "b")}  # created
    ready_a = app("a")
    assert wakes.changed(a, ready_a) == {("ns", "b")}
    assert wakes.changed(ready_a, ready_a) == set()  # the same view: nothing to wake
    # A status write changes the Store's body in place: the view last seen is what counts.
    ready_a["status"]["conditions"][0]["reason"] = "Other"
    assert wakes.changed(ready_a, ready_a) == {("ns", "b")}
    assert wakes.changed(ready_a, None) == {("ns", "b")}  # deleted
    # A dependent gone (or its edges changed) wakes the dependencies it named: a deletion may wait on it.
    wakes.changed(None, b)
    assert wakes.changed(b, None) == {("ns", "a")}
    # The AppInstalls waiting in the namespace (catalog dependencies name apps, not objects) are woken.
    s.record(app("w", ready="False", reason="DependencyMissing"))
    assert ("ns", "w") in wakes.changed(None, app("db", app_name="postgresql"))


def test_the_store_tells_of_each_change() -> None:
    seen: list[tuple[Any, Any]] = []
    s = Store(app_indexes(), on_change=lambda old, new: seen.append((old, new)))
    body = app("a")
    s.record(body)
    s.record(body)  # an echo: not a change
    s.forget(("ns", "a"))
    assert seen == [(None, body), (body, None)]


@pytest.mark.parametrize(
    ("text", "apps", "ignored"),
    [
        ("postgresql>=15, redis", [("postgresql", ">=15"), ("redis", None)], 0),
        ("postgresql >=15 <17, redis ^7", [("postgresql", ">=15 <17"), ("redis", "^7")], 0),
        ("Bad Name, x>>>1, , ok", [("ok", None)], 2),
        ("a" * 3000, [], 1),
        (",".join(f"app{i}" for i in range(30)), [(f"app{i}", None) for i in range(20)], 1),
    ],
)
def test_the_dependencies_annotation(text: str, apps: list[tuple[str, str | None]], ignored: int) -> None:
    found, problems = parse_dependencies({"kubemart.io/dependencies": text})
    assert [(d.app, d.version) for d in found] == apps
    assert all(d.type == "application" and d.mandatory for d in found)
    assert len(problems) == ignored


def test_the_catalog_fills_dependencies_and_notes_what_it_ignored() -> None:
    entry = {"version": "1.0.0", "annotations": {"kubemart.io/dependencies": "postgresql>=15, Bad!"}}
    catalog = catalog_from_charts("s", {"web": [entry], "other": [{"version": "1.0.0", "annotations": 7}]})
    spec = catalog.entries["s.web"].spec
    assert [(d.app, d.version) for d in spec.dependencies] == [("postgresql", ">=15")]
    assert len(catalog.ignored) == 1
    assert catalog.ignored[0].startswith("web:")
    assert "s.other" in catalog.entries


@pytest.mark.parametrize(
    ("reason", "stalled"),
    [("DependencyNotReady", False), ("DependencyMissing", False), ("DependencyCycle", True)],
)
def test_waiting_reads_progressing_and_a_cycle_stalled(reason: str, stalled: bool) -> None:
    from kubemart.release.dependencies import Waiting

    given = state(dependencies=Waiting(reason, "why", stalled=stalled))
    report = summarize.summarize(
        given, Decision(Action.WAIT_DEPENDENCIES), Outcome(), now=datetime.now(UTC), history_limit=10
    )
    assert report.summary.ready is False
    assert report.summary.reason == reason
    assert report.summary.reconciling is not stalled
    assert report.summary.stalled is stalled
    assert report.status.phase == "Pending"
    assert report.next == summarize.WAIT  # woken by the dependency's change, not by a timer
    assert [n.reason for n in report.notes] == [reason]
