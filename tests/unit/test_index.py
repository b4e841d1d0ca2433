"""runtime.index: declared look-ups kept up to date as bodies come and go."""

from __future__ import annotations

from typing import Any

from kubemart.app import app_indexes
from kubemart.runtime.index import Index, Store


def app(name: str, rv: int, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rv)}, "spec": spec}


def test_index_follows_changes_and_deletions() -> None:
    index = Index(lambda b: [b["spec"].get("color")])
    index.put(("ns", "a"), app("a", 1, color="red"))
    index.put(("ns", "b"), app("b", 1, color="red"))
    assert index.get("red") == {("ns", "a"), ("ns", "b")}
    index.put(("ns", "a"), app("a", 2, color="blue"))
    assert index.get("red") == {("ns", "b")}
    assert index.get("blue") == {("ns", "a")}
    index.drop(("ns", "b"))
    assert index.get("red") == set()


def test_the_app_indexes_answer_what_events_ask() -> None:
    store = Store(app_indexes())
    store.record(
        app(
            "wiki",
            1,
            source="demo",
            app="wiki",
            releaseName="w",
            targetNamespace="other",
            valuesFrom=[{"kind": "ConfigMap", "name": "settings"}, {"kind": "Secret", "name": "creds"}],
        )
    )
    store.record(app("blog", 1, source="demo", app="blog"))
    assert store.lookup("release", ("other", "w")) == {("ns", "wiki")}
    assert store.lookup("release", ("ns", "blog")) == {("ns", "blog")}
    assert store.lookup("app", ("demo", "wiki")) == {("ns", "wiki")}
    assert store.lookup("paid", ("ns", "demo", "blog")) == {("ns", "blog")}
    assert store.lookup("values", ("ns", "Secret", "creds")) == {("ns", "wiki")}
    assert store.lookup("values", ("ns", "ConfigMap", "creds")) == set()
    store.forget(("ns", "wiki"))
    assert store.lookup("values", ("ns", "Secret", "creds")) == set()


def test_an_older_body_is_not_recorded() -> None:
    store = Store(app_indexes())
    assert store.record(app("a", 5, source="s", app="x"))
    assert not store.record(app("a", 4, source="s", app="y"))
    assert store.lookup("app", ("s", "x")) == {("ns", "a")}
