"""Operator settings, from KUBEMART_* environment variables (the chart sets them from its values)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_helm() -> str:
    return shutil.which("helm") or "helm"


def _own_namespace() -> str:
    """The pod's namespace in a cluster; `default` outside one."""
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    try:
        return path.read_text().strip() or "default"
    except OSError:
        return "default"


def _default_cosign() -> str:
    return shutil.which("cosign") or "cosign"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBEMART_", extra="ignore")

    helm_binary: str = Field(default_factory=_default_helm, description="The helm CLI to run.")
    cosign_binary: str = Field(
        default_factory=_default_cosign,
        description="The cosign CLI that checks OCI charts of sources with spec.verify.provider cosign.",
    )
    # helm spends most of an install waiting for readiness, so more run at once than there are cores:
    # 16 beat raw helm 4-at-a-time by 13% on 2 cores (docs/benchmarks.md); 8 was 2% slower.
    max_concurrent_helm: int = Field(default=16, ge=1, description="Helm operations running at once, in all.")
    max_concurrent_helm_per_namespace: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Helm operations one namespace may run at once; default three quarters of max_concurrent_helm, "
            "so one tenant's backlog never takes every slot."
        ),
    )
    max_timeout_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="The longest spec.timeout honoured; longer ones are cut to this, so no operation holds a helm slot for hours.",
    )
    chart_cache_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / f"kubemart-charts-{os.getuid()}",
        description="Where downloaded charts are kept, by digest.",
    )

    @property
    def helm_per_namespace(self) -> int:
        return self.max_concurrent_helm_per_namespace or max(1, self.max_concurrent_helm * 3 // 4)

    resync_interval: float = Field(default=600.0, gt=0, description="Seconds between checks of an idle app.")
    install_counts_interval: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds between writes of one MarketApp's status.installs (at most one per app per interval).",
    )
    history_limit: int = Field(default=10, ge=1, description="Operations kept in status.history.")
    catalog_write_concurrency: int = Field(
        default=16, ge=1, description="MarketApp writes in flight per sync."
    )
    # Catalog sources (docs/security.md, "Threat model: catalogs"): what one repository may cost us.
    index_max_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest index.yaml accepted, in bytes once decoded."
    )
    index_max_nodes: int = Field(
        default=1_500_000, ge=10_000, description="Most YAML nodes in an index, aliases counted expanded."
    )
    index_parse_seconds: float = Field(
        default=30.0, gt=0, description="Longest time reading one index may take."
    )
    chart_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest chart archive downloaded."
    )
    repository_deadline: float = Field(
        default=60.0, gt=0, description="Seconds one request to a chart repository may take, body included."
    )
    manifest_read_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Chart archives downloaded at once to read their Olares manifests.",
    )
    git_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Largest git repository cache (one commit at depth 1); a fetch past it is stopped.",
    )
    max_catalog_apps: int = Field(default=10_000, ge=1, description="Most apps one MarketSource may hold.")
    min_source_interval: float = Field(
        default=30.0,
        gt=0,
        description="Shortest MarketSource interval, in seconds; shorter ones are raised to it.",
    )
    webhook_port: int = Field(default=8082, ge=0, description="Port of /webhooks/payment; 0 turns it off.")
    webhook_public_url: str = Field(
        default="",
        pattern=r"^(https?://[^\s]+)?$",
        max_length=2048,
        description="The URL at which payment gateways reach /webhooks/payment (sent to them as webhookURL); "
        "empty: none is sent and the operator relies on polling.",
    )
    metrics_port: int = Field(default=8081, ge=0, description="Port of /metrics; 0 turns it off.")
    # Unauthenticated clients reach both ports (docs/security.md, threat model): where they listen, and bounds.
    webhook_bind_address: str = Field(
        default="0.0.0.0", description="Address /webhooks/payment listens on; gateways must reach it."
    )
    metrics_bind_address: str = Field(
        default="127.0.0.1",
        description="Address /metrics and /runtime/* listen on; 0.0.0.0 only when Prometheus scrapes the pod.",
    )
    http_max_connections: int = Field(
        default=256,
        ge=1,
        description="Open connections per server; an idle one is closed to admit a new one.",
    )
    http_idle_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a connection may take to send a request's head, or sit idle."
    )
    http_body_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a request may take to send its body."
    )
    # A tenant's spec.values and the values merged from valuesFrom (domain.bounds): helm is given no more.
    values_max_depth: int = Field(default=32, ge=1, le=1000, description="Deepest nesting of values.")
    values_max_nodes: int = Field(
        default=100_000, ge=1, description="Most maps, lists and scalars in values."
    )
    values_max_bytes: int = Field(default=1024 * 1024, ge=1, description="Largest values, as compact JSON.")
    log_format: str = Field(default="text", pattern="^(text|json)$", description="text or json.")
    # Tenancy (docs/security.md): whose permissions helm uses, and where an app may install.
    default_service_account: str | None = Field(
        default=None,
        description="ServiceAccount (in the AppInstall's namespace) used when spec.serviceAccountName is empty.",
    )
    require_service_account: bool = Field(
        default=False,
        description="Refuse an AppInstall that names no ServiceAccount when there is no default.",
    )
    allow_cross_namespace: bool = Field(
        default=False,
        description="Allow any spec.targetNamespace; otherwise only the app's service account's own reach.",
    )
    # NotificationSinks (docs/notifications.md): the URL is tenant input, so private targets are refused.
    notify_allow_private: bool = Field(
        default=False,
        description="Allow sink URLs that resolve to loopback, link-local or private addresses (tests, labs).",
    )
    notify_allow_http: bool = Field(default=False, description="Allow http:// sink URLs (not only https://).")
    notify_admin_namespace: str = Field(
        default_factory=_own_namespace,
        description="Sinks in this namespace may receive every namespace's Events and the cluster-scoped "
        "kinds'; sinks elsewhere only their own namespace's.",
    )
    notify_queue_size: int = Field(
        default=1000, ge=1, description="Events queued per sink; the oldest drop first."
    )
    notify_rate: float = Field(default=20.0, gt=0, description="Most deliveries per second to one sink.")
    notify_timeout: float = Field(
        default=10.0, gt=0, description="Seconds one delivery may take, answer included."
    )
    notify_backoff_max: float = Field(
        default=60.0, gt=0, description="Longest wait between retries of a receiver that fails."
    )
    notify_status_interval: float = Field(
        default=5.0, gt=0, description="Seconds between writes of a sink's delivery status."
    )
    # Requirements (docs/requirements.md): an app's catalog requirements and its chart's kubeVersion
    # are checked against the cluster before an install or an upgrade.
    check_requirements: bool = Field(
        default=True,
        description="Check requirements before installs and upgrades; needs list/watch on nodes and pods.",
    )
    capacity_wake_interval: float = Field(
        default=2.0,
        ge=0,
        description="Seconds between wakes of the apps waiting on InsufficientResources when capacity grows.",
    )
