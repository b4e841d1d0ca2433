"""Prometheus metrics, served on the metrics port at /metrics (runtime.http_server; names start with kubemart_)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

HELM_SUBPROCESSES = Counter(
    "kubemart_helm_subprocesses", "helm subprocesses started, by operation.", ["operation"]
)
OPERATIONS = Counter("kubemart_operations", "Operations on apps, by type and result.", ["type", "result"])
OPERATION_SECONDS = Histogram(
    "kubemart_operation_duration_seconds",
    "How long operations on apps took, by type.",
    ["type"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)
RECONCILES = Counter("kubemart_reconciles", "Reconciles run, by kind.", ["kind"])
CORRECTIONS = Counter("kubemart_corrections", "Drift corrections made to apps' objects.")
NOTIFICATIONS = Counter(
    "kubemart_notifications",
    "Notification attempts to sinks: delivered, failed (retried) or dropped (queue full, refused).",
    ["result"],
)
CATALOG_WRITES = Counter("kubemart_catalog_writes", "MarketApp writes and deletes made by catalog syncs.")
WATCHED_VALUES_EVENTS = Counter(
    "kubemart_watched_values_events",
    "Events handled for ConfigMaps and Secrets labelled kubemart.io/watch=true, by kind.",
    ["kind"],
)
# The operator's own health under load (runtime.loop_lag, runtime.bounded_http).
LOOP_LAG = Histogram(
    "kubemart_event_loop_lag_seconds",
    "How late the event loop ran a task that asked to wake at a given time.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LOOP_LAG_MAX = Gauge("kubemart_event_loop_lag_max_seconds", "The longest event loop lag in the last minute.")
HTTP_CONNECTIONS = Gauge("kubemart_http_connections", "Open connections, by server.", ["server"])
HTTP_SHED = Counter(
    "kubemart_http_connections_shed",
    "Connections closed to bound a server: evicted (idle, to admit a new one), refused (all busy), by server.",
    ["server", "reason"],
)


class _AppsByPhase(Collector):
    """kubemart_apps{phase}: counted at scrape time from the bodies the operator already holds."""

    def __init__(self, bodies: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self.bodies = bodies

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("kubemart_apps", "AppInstalls by phase.", labels=["phase"])
        tally = Tally(str((b.get("status") or {}).get("phase") or "Pending") for b in self.bodies())
        for phase, count in sorted(tally.items()):
            family.add_metric([phase], count)
        yield family


_apps_by_phase: _AppsByPhase | None = None


def count_apps(bodies: Callable[[], Iterable[dict[str, Any]]]) -> None:
    """Count these AppInstalls in kubemart_apps; calling it again replaces the source (never registers twice)."""
    global _apps_by_phase
    if _apps_by_phase is None:
        _apps_by_phase = _AppsByPhase(bodies)
        REGISTRY.register(_apps_by_phase)
    else:
        _apps_by_phase.bodies = bodies


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exposed_names() -> set[str]:
    """Every series name /metrics can show (kubemart_apps included), for checking dashboards' queries."""
    families = [*REGISTRY.collect(), *_AppsByPhase(lambda: ()).collect()]
    return {
        f.name + suffix
        for f in families
        if f.name.startswith("kubemart_")
        for suffix in _SUFFIXES.get(f.type, ("",))
    }
