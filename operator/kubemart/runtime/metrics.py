"""Prometheus metrics, served on the metrics port at /metrics (names start with kubemart_)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

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
CATALOG_WRITES = Counter("kubemart_catalog_writes", "MarketApp writes and deletes made by catalog syncs.")


def serve(port: int) -> None:
    if port:
        start_http_server(port, addr="0.0.0.0")
