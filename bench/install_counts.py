"""(l) Install counts with 1,000 AppInstalls churning: MarketApp status writes against AppInstall events.

A source of 10 small charts; 1,000 AppInstalls spread over them (100 each, over 10 namespaces), all
`spec.suspend: true` (they count like any other and need no helm run, so the bench measures the
counting, not installs); then `--churn-seconds` of churn: AppInstalls deleted and created again as
fast as 4 client threads go; then all deleted. The AppInstall events are counted by a watch of the
bench's own (the operator hears at least those); the MarketApp status writes by the API server's
own counter (`apiserver_request_total`, resource marketapps, subresource status). The baseline is a
write per AppInstall event (the naive way: each event patches its app's counts), from the same run.
At the end every MarketApp's `status.installs.total` is checked against the AppInstalls that exist.
"""

from __future__ import annotations

import concurrent.futures
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

from support.repo import ChartRepo

GROUP, VERSION = "kubemart.io", "v1alpha1"
APPS, NAMESPACES = 10, 10
LABEL = "bench.kubemart.io/counts"
_STATUS_WRITE = re.compile(
    r'^apiserver_request_total\{(?=[^}]*resource="marketapps")(?=[^}]*subresource="status")'
    r'(?=[^}]*verb="(?:PATCH|PUT|APPLY)")[^}]*\} (\S+)$',
    re.M,
)


def status_writes(metrics_text: str) -> int:
    """MarketApp status writes the API server has served (all clients; the operator is the only one)."""
    return int(sum(float(v) for v in _STATUS_WRITE.findall(metrics_text)))


class EventCounter:
    """Counts AppInstall watch events (of the bench's label) in a thread; a watch the API server ends
    (it does, under load) is resumed from the last resourceVersion seen, so no event is lost."""

    def __init__(self, custom: client.CustomObjectsApi, run: str) -> None:
        self.events = 0
        self.resumed = 0
        self.gap = False
        self._stopped = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, args=(custom, run), daemon=True)
        self._thread.start()

    def _run(self, custom: client.CustomObjectsApi, run: str) -> None:
        listed = custom.list_cluster_custom_object(
            GROUP, VERSION, "appinstalls", label_selector=f"{LABEL}={run}"
        )
        rv = listed["metadata"]["resourceVersion"]
        while not self._stopped.is_set():
            self._watch = watch.Watch()
            try:
                for event in self._watch.stream(
                    custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    "appinstalls",
                    label_selector=f"{LABEL}={run}",
                    resource_version=rv,
                    timeout_seconds=300,
                ):
                    rv = event["object"]["metadata"]["resourceVersion"]
                    self.events += 1
            except Exception as exc:
                if self._stopped.is_set():
                    return
                self.resumed += 1
                if isinstance(exc, client.ApiException) and exc.status == 410:
                    self.gap = True  # events were lost: the figures would be wrong, the bench says so
                    return
                time.sleep(0.5)

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.stop()


def body(run: str, name: str, source: str, app: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AppInstall",
        "metadata": {"name": name, "labels": {LABEL: run}},
        "spec": {"source": source, "app": f"app-{app}", "suspend": True},
    }


def bench_install_counts(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    tmp: Any,
    metrics: Callable[[], str],
    *,
    installs: int = 1000,
    churn_seconds: float = 60.0,
    interval: float = 5.0,
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    repo = ChartRepo(tmp / f"counts-repo-{run}")
    for i in range(APPS):
        repo.add_chart(f"app-{i}", "1.0.0", reindex=i == APPS - 1)
    source = f"bench-counts-{run}"
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "marketsources",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MarketSource",
            "metadata": {"name": source},
            "spec": {"url": repo.url, "interval": "1h"},
        },
    )
    names = [f"{source}.app-{i}" for i in range(APPS)]
    _wait(lambda: all(_get_app(custom, n) for n in names), 120)
    namespaces = [f"bench-counts-{run}-{i}" for i in range(NAMESPACES)]
    for ns in namespaces:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    live: dict[tuple[str, str], int] = {}
    lock = threading.Lock()
    serial = iter(range(10**9))

    def create(app: int) -> None:
        ns = namespaces[random.randrange(NAMESPACES)]
        name = f"ai-{next(serial)}"
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, "appinstalls", body(run, name, source, app)
        )
        with lock:
            live[(ns, name)] = app

    def delete_one() -> None:
        with lock:
            if not live:
                return
            key = random.choice(list(live))
            del live[key]
        custom.delete_namespaced_custom_object(GROUP, VERSION, key[0], "appinstalls", key[1])

    def totals() -> dict[str, int]:
        with lock:
            counts = dict.fromkeys(names, 0)
            for app in live.values():
                counts[names[app]] += 1
        return counts

    def shown() -> dict[str, int]:
        return {
            n: ((_get_app(custom, n) or {}).get("status") or {}).get("installs", {}).get("total", 0)
            for n in names
        }

    def existing() -> dict[str, tuple[int, int]]:
        """(AppInstalls, of them being deleted) by MarketApp, as the API server has them."""
        items = custom.list_cluster_custom_object(
            GROUP, VERSION, "appinstalls", label_selector=f"{LABEL}={run}"
        )
        out: dict[str, tuple[int, int]] = {}
        for item in items["items"]:
            name = f"{source}.{item['spec']['app']}"
            n, d = out.get(name, (0, 0))
            out[name] = (n + 1, d + bool(item["metadata"].get("deletionTimestamp")))
        return out

    counter = EventCounter(custom, run)
    phases: dict[str, dict[str, Any]] = {}
    try:
        for phase, work in (
            ("create", lambda: _pool(lambda i: create(i % APPS), range(installs))),
            ("churn", lambda: _churn(create, delete_one, churn_seconds)),
            ("delete", lambda: _pool(lambda _: delete_one(), range(len(live)))),
        ):
            events0, writes0, start = counter.events, status_writes(metrics()), time.monotonic()
            work()
            # The truth is what the API server holds: an AppInstall whose deletion waits for the operator's
            # finalizer (a helm history call, retried with backoff under load) still exists and counts.
            try:
                _wait(lambda: shown() == {n: existing().get(n, (0, 0))[0] for n in names}, 180)
            except TimeoutError:
                raise TimeoutError(
                    f"{phase}: shown {shown()}, exist {existing()}, asked {totals()}"
                ) from None
            took = time.monotonic() - start
            time.sleep(interval + 1)  # a write due at the next round is counted in this phase
            if counter.gap:
                raise RuntimeError("the watch counting AppInstall events lost some (resourceVersion expired)")
            events, writes = counter.events - events0, status_writes(metrics()) - writes0
            minutes = (time.monotonic() - start) / 60  # the window both counts were taken over
            phases[phase] = {
                "seconds": round(took, 1),
                "being_deleted_at_end": sum(d for _, d in existing().values()),
                "appinstall_events": events,
                "status_writes": writes,
                "writes_per_app_per_minute": round(writes / APPS / minutes, 2),
                "naive_writes_per_app_per_minute": round(events / APPS / minutes, 1),
            }
            print(phase, phases[phase], flush=True)
        # Every deletion finished (the operator is stopped after the bench; finalizers left would stay).
        _wait(lambda: not existing(), 300)
    finally:
        counter.stop()
        custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", source)
        for ns in namespaces:
            core.delete_namespace(ns)
        repo.close()
    return {
        "installs": installs,
        "apps": APPS,
        "interval_s": interval,
        "churn_seconds": churn_seconds,
        "watch_resumed": counter.resumed,
        "phases": phases,
    }


def _get_app(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    try:
        return custom.get_cluster_custom_object(GROUP, VERSION, "marketapps", name)  # type: ignore[no-any-return]
    except client.ApiException:
        return None


def _pool(fn: Callable[[int], None], items: Any) -> None:
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(fn, items))


def _churn(create: Callable[[int], None], delete_one: Callable[[], None], seconds: float) -> None:
    """Delete an AppInstall and create one of a random app, from 4 threads, for `seconds`."""
    end = time.monotonic() + seconds

    def worker(_: int) -> None:
        while time.monotonic() < end:
            delete_one()
            create(random.randrange(APPS))

    _pool(worker, range(4))


def _wait(probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.25)
    raise TimeoutError(f"not reached within {timeout}s")


def counts_lines(r: dict[str, Any] | None, when: str) -> list[str]:
    if not r:
        return []
    rows = []
    labels = {
        "create": f"{r['installs']} AppInstalls created",
        "churn": f"{int(r['churn_seconds'])} s of churn (delete one, create one, 4 threads)",
        "delete": "all deleted",
    }
    for phase, p in r["phases"].items():
        rows.append(
            f"| {labels[phase]} | {p['seconds']} s | {p['appinstall_events']} | {p['appinstall_events']} "
            f"({p['naive_writes_per_app_per_minute']}/app/min) | **{p['status_writes']}** "
            f"({p['writes_per_app_per_minute']}/app/min) |"
        )
    cap = round(60 / r["interval_s"], 1)
    return [
        f"### (l) Install counts: {r['installs']:,} AppInstalls churning over {r['apps']} apps ({r.get('when', when)})",
        "",
        "`make bench BENCH_ARGS='--only counts'` (bench/install_counts.py): suspended AppInstalls (they count, "
        "and need no helm run), spread over 10 namespaces. Events counted by a watch of the bench's own; "
        "status writes by the API server (`apiserver_request_total`, marketapps/status); the naive baseline "
        "writes once per AppInstall event. Time is until every MarketApp shows the right total, checked against "
        "the AppInstalls the API server holds (one being deleted counts until its finalizer is removed); rates are over that time and one interval more, when the last writes land. "
        f"`KUBEMART_INSTALL_COUNTS_INTERVAL` = {r['interval_s']} s caps the writes at {cap} per app per minute. "
        "Times vary with the load of this shared machine (other suites ran alongside); the writes stay under the "
        "cap whatever the event rate.",
        "",
        "| phase | time | AppInstall events | naive: one write per event | MarketApp status writes |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
