"""MarketSource: a catalog of apps (a Helm chart repository), cluster-scoped."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from kubemart.models.resource import (
    DURATION_PATTERN,
    KindInfo,
    Model,
    PrinterColumn,
    ReconciledStatus,
    Resource,
    SecretReference,
)


class SourceType(StrEnum):
    """How the catalog is served."""

    HELM = "helm"
    """An HTTP(S) Helm chart repository that serves index.yaml."""
    OCI = "oci"
    """An OCI registry of charts (not supported yet)."""
    GIT = "git"
    """A git repository of app definitions (not supported yet)."""


PUBLIC_KEY_DESCRIPTION = (
    "An Ed25519 public key that signs receipts, as base64 or base64url of its 32 raw bytes, base64 of "
    "its DER SubjectPublicKeyInfo (MCowBQYDK2VwAyEA...), or PEM (-----BEGIN PUBLIC KEY-----). "
    "A key that cannot be read makes the source Ready=False (reason InvalidPublicKey) and no checkout opens."
)


class RetiredKey(Model):
    """A key the gateway signed receipts with before it rotated; receipts it signed still unlock."""

    key_id: str = Field(
        alias="keyID",
        description="The `kid` the gateway put in the headers of the receipts this key signed.",
        min_length=1,
        max_length=64,
    )
    public_key: str = Field(description=PUBLIC_KEY_DESCRIPTION, min_length=32, max_length=1024)


class PaymentGateway(Model):
    """The gateway that sells this catalog's paid apps (docs/payment-gateway.md)."""

    url: str = Field(
        description="Base URL of the gateway's API.", pattern=r"^https?://[^\s]+$", max_length=2048
    )
    secret_ref: SecretReference = Field(description="A Secret with `token` (API) and `webhookSecret` (HMAC).")
    public_key: str = Field(description=PUBLIC_KEY_DESCRIPTION, min_length=32, max_length=1024)
    key_id: str | None = Field(
        default=None,
        alias="keyID",
        description="The `kid` the gateway puts in the headers of receipts signed with publicKey (optional).",
        max_length=64,
    )
    retired_keys: list[RetiredKey] = Field(
        default_factory=list,
        description="Keys the gateway used before rotating to publicKey: receipts they signed stay valid.",
        max_length=8,
    )

    def key_entries(self) -> list[tuple[str, str]]:
        """(kid, key) of every key receipts may be signed with, the current one first."""
        return [(self.key_id or "", self.public_key)] + [(k.key_id, k.public_key) for k in self.retired_keys]


MIN_INTERVAL = "30s"
"""Shortest `spec.interval` admitted; the operator also raises shorter ones of older objects to its
KUBEMART_MIN_SOURCE_INTERVAL."""
NAME_RULE: JsonDict = {
    # One DNS label: MarketApp names are `<source>.<app>`, so a dot in a source name could make two
    # sources produce the same MarketApp name (issue "Trust boundaries", point 2).
    # Checked when the object is created (names never change): a status write to an older object
    # with a dotted name must still go through, to say what is wrong with it.
    "rule": "oldSelf.hasValue() || (size(self.metadata.name) <= 63 && "
    "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))",
    "optionalOldSelf": True,
    "message": "metadata.name of a MarketSource must be one DNS label: at most 63 lowercase letters, "
    "digits and '-', no dots (its MarketApps are named <source>.<app>)",
    "reason": "FieldValueInvalid",
}
INTERVAL_RULE: JsonDict = {
    "rule": f"!has(self.interval) || duration(self.interval) >= duration('{MIN_INTERVAL}')",
    "message": f"interval must be at least {MIN_INTERVAL}; a shorter one would have the operator poll the "
    "repository without rest",
    "fieldPath": ".interval",
    "reason": "FieldValueInvalid",
}


class MarketSourceSpec(Model):
    """Where the catalog is and how to sync it."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [INTERVAL_RULE]})

    type: SourceType = Field(
        default=SourceType.HELM, description="How the catalog is served: helm, oci or git."
    )
    url: str = Field(
        description="The repository URL, e.g. https://charts.example.com.",
        min_length=1,
        max_length=2048,
        pattern=r"^(https?|oci)://[^\s]+$",
    )
    interval: str = Field(
        default="10m",
        description=f"How often to re-sync, as a duration (10m, 1h); at least {MIN_INTERVAL}.",
        pattern=DURATION_PATTERN,
        max_length=32,
    )
    secret_ref: SecretReference | None = Field(
        default=None,
        description="A Secret with `username` and `password`, or `token`, and optionally `ca.crt`.",
    )
    suspend: bool = Field(default=False, description="Stop syncing; the catalog stays as it is.")
    priority: int = Field(
        default=0, description="The default source for an app name is the one with the highest priority."
    )
    payment: PaymentGateway | None = Field(
        default=None, description="Where this catalog's paid apps are bought."
    )


class MarketSourceStatus(ReconciledStatus):
    """What the operator last saw of the catalog."""

    # Bounded in the CRD (the operator never writes more), but not when read: a status written by
    # an older operator must not make its own object unreadable.
    revision: str | None = Field(
        default=None,
        description="sha256 of the last good index (the catalog's content).",
        json_schema_extra={"maxLength": 128},
    )
    last_sync_time: datetime | None = Field(default=None, description="When the index was last checked.")
    app_count: int | None = Field(default=None, description="How many apps the catalog holds.")
    etag: str | None = Field(
        default=None, description="ETag of the last good index.", json_schema_extra={"maxLength": 256}
    )
    last_modified: str | None = Field(
        default=None,
        description="Last-Modified of the last good index.",
        json_schema_extra={"maxLength": 256},
    )


class MarketSource(Resource):
    """A catalog of apps: a chart repository whose charts become MarketApps."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [NAME_RULE]})

    info = KindInfo(
        kind="MarketSource",
        plural="marketsources",
        singular="marketsource",
        short_names=("msrc",),
        scope="Cluster",
        printer_columns=(
            PrinterColumn("Type", ".spec.type"),
            PrinterColumn("URL", ".spec.url"),
            PrinterColumn("Apps", ".status.appCount", "integer"),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn("Status", '.status.conditions[?(@.type=="Ready")].message', priority=1),
        ),
    )
    spec: MarketSourceSpec
    status: MarketSourceStatus = Field(default_factory=MarketSourceStatus)
