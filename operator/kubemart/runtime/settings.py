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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBEMART_", extra="ignore")

    helm_binary: str = Field(default_factory=_default_helm, description="The helm CLI to run.")
    # helm spends most of an install waiting for readiness, so more run at once than there are cores:
    # 16 beat raw helm 4-at-a-time by 13% on 2 cores (docs/benchmarks.md); 8 was 2% slower.
    max_concurrent_helm: int = Field(default=16, ge=1, description="Helm operations running at once, in all.")
    chart_cache_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / f"kubemart-charts-{os.getuid()}",
        description="Where downloaded charts are kept, by digest.",
    )
    resync_interval: float = Field(default=600.0, gt=0, description="Seconds between checks of an idle app.")
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
    max_catalog_apps: int = Field(default=10_000, ge=1, description="Most apps one MarketSource may hold.")
    min_source_interval: float = Field(
        default=30.0,
        gt=0,
        description="Shortest MarketSource interval, in seconds; shorter ones are raised to it.",
    )
    webhook_port: int = Field(default=8082, ge=0, description="Port of /webhooks/payment; 0 turns it off.")
    metrics_port: int = Field(default=8081, ge=0, description="Port of /metrics; 0 turns it off.")
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
