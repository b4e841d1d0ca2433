"""MarketApp.status.installs: counts after 100 installs and uninstalls, written in batches.

The writes are counted by a watch of the MarketApp (each status write is one new resourceVersion),
and the AppInstall events by a watch of the namespace: the operator hears at least those.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from support.apps import install, request_reconcile, running
from support.cluster import Cluster
from support.kube import Objects
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for

GROUP, VERSION = "kubemart.io", "v1alpha1"
INTERVAL = 5.0
"""KUBEMART_INSTALL_COUNTS_INTERVAL's default, which the shared operator runs with."""
SUSPENDED, REAL = 97, 3


@dataclass
class Seen:
    events: int = 0
    installs: list[tuple[str, Any]] = field(default_factory=list)
    """(resourceVersion, status.installs) of each MarketApp event that changed its counts."""


class Watching:
    """Counts the events of one watch in a thread until stopped."""

    def __init__(self, list_fn: Any, *args: Any, on: Any, **kwargs: Any) -> None:
        self._watch = watch.Watch()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, args=(list_fn, args, kwargs, on), daemon=True, name="test-watch"
        )
        self._thread.start()

    def _run(self, list_fn: Any, args: Any, kwargs: Any, on: Any) -> None:
        try:
            for event in self._watch.stream(list_fn, *args, timeout_seconds=300, **kwargs):
                on(event)
        except Exception:
            if not self._stopped:  # a watch cut while the test runs would undercount: say so
                raise

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()
        self._thread.join(timeout=10)


@pytest.fixture
def watched(k8s: client.ApiClient, catalog: str, namespace: str) -> Iterator[tuple[Seen, Seen]]:
    """(the MarketApp <catalog>.hello's count changes, the AppInstall events in the namespace)."""
    custom = client.CustomObjectsApi(k8s)
    app, installs = Seen(), Seen()

    def on_app(event: dict[str, Any]) -> None:
        obj = event["object"]
        app.events += 1
        shown = (obj.get("status") or {}).get("installs")
        if not app.installs or app.installs[-1][1] != shown:
            app.installs.append((obj["metadata"]["resourceVersion"], shown))

    def on_install(_: dict[str, Any]) -> None:
        installs.events += 1

    watches = [
        Watching(
            custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            "marketapps",
            field_selector=f"metadata.name={catalog}.hello",
            on=on_app,
        ),
        Watching(
            custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "appinstalls", on=on_install
        ),
    ]
    wait_for(lambda: app.events, timeout=30, what="the MarketApp watched")
    yield app, installs
    for w in watches:
        w.stop()


def shows(objects: Objects, name: str, total: int, running_: int) -> bool:
    got = ((objects.get("marketapps", name) or {}).get("status") or {}).get("installs") or {}
    return (got.get("total", 0), got.get("running", 0)) == (total, running_)


def writes_since(seen: Seen, mark: int) -> int:
    return len(seen.installs) - mark


def printed(table: str) -> dict[str, str]:
    """kubectl's one-row table by header (empty cells are blank, so split by the headers' positions)."""
    header, row = table.splitlines()[:2]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    ends = [*starts[1:], None]
    return {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, ends, strict=True)}


def search(cluster: Cluster, catalog: str, sort: str) -> list[tuple[str, str]]:
    """(NAME, INSTALLS) rows of `kubectl market search --source <catalog> --sort <sort>`."""
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("kubectl-market")),
            "search",
            "--source",
            catalog,
            "--sort",
            sort,
        ],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out[0].split()[5] == "INSTALLS"
    return [(line.split()[0], line.split()[5]) for line in out[1:]]


def test_counts_after_100_installs_and_uninstalls_are_written_in_batches(
    cluster: Cluster,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
    chart_repo: ChartRepo,
    watched: tuple[Seen, Seen],
) -> None:
    app, installs = watched
    name = f"{catalog}.hello"
    start, first_mark = time.monotonic(), len(app.installs)
    assert shows(objects, name, 0, 0), "a new app nobody installed"
    for i in range(REAL):
        install(objects, namespace, f"real-{i}", source=catalog, app="hello", version="0.1.0")
    for i in range(SUSPENDED):
        install(objects, namespace, f"held-{i:03d}", source=catalog, app="hello", suspend=True)
    # An app the catalog does not have yet: counted, and written once its MarketApp appears.
    for i in range(5):
        install(objects, namespace, f"arriving-{i}", source=catalog, app="arriving", suspend=True)
    for i in range(REAL):
        wait_for(lambda i=i: running(objects, namespace, f"real-{i}"), timeout=90, what=f"real-{i} Running")
    wait_for(lambda: shows(objects, name, 100, REAL), timeout=3 * INTERVAL, what="100 installs, 3 running")
    took = time.monotonic() - start
    columns = printed(cluster.run("kubectl", "get", "marketapp", name, "-o", "wide").stdout)
    assert (columns["INSTALLS"], columns["RUNNING"]) == ("100", str(REAL))
    up_writes, up_events = writes_since(app, first_mark), installs.events
    # At most one write per interval (the first one at once), and far fewer than the events.
    assert up_writes <= took / INTERVAL + 2, (up_writes, took, app.installs)
    assert up_events >= 2 * 105, "each AppInstall was created and had its status written at least"
    assert up_writes * 10 < up_events, (up_writes, up_events)

    # Counts someone else wrote are written back, and the count writes wake none of the 100 AppInstalls
    # (a MarketApp event whose spec did not change is only a count write).
    reconciles = operator.metric('kubemart_reconciles_total{kind="appinstall"}')
    objects.custom.patch_cluster_custom_object_status(
        GROUP, VERSION, "marketapps", name, {"status": {"installs": {"total": 9000, "running": 0}}}
    )
    wait_for(lambda: app.installs[-1][1] == {"total": 9000, "running": 0}, timeout=10, what="forged")
    wait_for(lambda: shows(objects, name, 100, REAL), timeout=3 * INTERVAL, what="written back")
    woken = operator.metric('kubemart_reconciles_total{kind="appinstall"}') - reconciles
    assert woken < 10, f"{woken} AppInstall reconciles after two MarketApp status writes"

    # A restart counts again from the AppInstall list, with 10 created while no operator ran; it never
    # writes a partial count (anything but 110 after the restart would be one).
    operator.stop()
    mark = len(app.installs)
    for i in range(10):
        install(objects, namespace, f"offline-{i}", source=catalog, app="hello", suspend=True)
    operator.start()
    wait_for(lambda: shows(objects, name, 110, REAL), timeout=30 + 3 * INTERVAL, what="110 after the restart")
    assert [shown for _, shown in app.installs[mark:]] == [{"total": 110, "running": REAL}]

    chart_repo.add_chart("arriving", "0.1.0")
    request_reconcile(objects, "marketsources", catalog)
    wait_for(lambda: shows(objects, f"{catalog}.arriving", 5, 0), timeout=60, what="counted once it appears")
    assert search(cluster, catalog, "name") == [("arriving", "5"), ("hello", "110")]
    assert search(cluster, catalog, "installs") == [("hello", "110"), ("arriving", "5")]

    mark, events_before, start = len(app.installs), installs.events, time.monotonic()
    objects.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "appinstalls")
    wait_for(lambda: shows(objects, name, 0, 0), timeout=90, what="back to 0")
    assert objects.list("appinstalls", namespace=namespace) == [], "every uninstall finished"
    took = time.monotonic() - start
    down_writes, down_events = writes_since(app, mark), installs.events - events_before
    assert down_writes <= took / INTERVAL + 2, (down_writes, took, app.installs[mark:])
    assert down_writes * 10 < down_events, (down_writes, down_events)
    print(
        f"up: {up_events} AppInstall events, {up_writes} writes; down: {down_events} events, {down_writes} writes"
    )
    assert "install counts" not in operator.log(), "no failed count writes"
