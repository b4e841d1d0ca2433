"""MarketSource: a catalog of apps (a Helm repository, an OCI registry, a git repository or uploads), cluster-scoped."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints
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
    """An OCI registry of charts: `url: oci://host[:port]/path`."""
    GIT = "git"
    """A git repository of chart directories and app definitions (tomo format)."""
    UPLOAD = "upload"
    """Charts people uploaded with `kubectl market upload`, stored in the cluster; no `url`."""


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


URL_RULES: list[JsonDict] = [
    {
        "rule": "self.type == 'upload' || has(self.url)",
        "message": "url is required for sources of type helm, oci and git",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "!has(self.url) || self.type != 'helm' || self.url.matches('^https?://')",
        "message": "a helm source's url is http:// or https://",
        "fieldPath": ".url",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "!has(self.url) || self.type != 'oci' || self.url.startsWith('oci://')",
        "message": "an oci source's url is oci://host[:port]/path",
        "fieldPath": ".url",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "!has(self.url) || self.type != 'git' || !self.url.startsWith('oci://')",
        "message": "a git source's url is https://, http://, ssh:// or user@host:path",
        "fieldPath": ".url",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "!has(self.ref) || self.type == 'git'",
        "message": "ref is for sources of type git",
        "fieldPath": ".ref",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": "self.type != 'upload' || has(self.upload)",
        "message": "upload.namespace is required for sources of type upload: the namespace whose Secrets "
        "hold the uploaded charts",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "!has(self.upload) || self.type == 'upload'",
        "message": "upload is for sources of type upload",
        "fieldPath": ".upload",
        "reason": "FieldValueForbidden",
    },
    {
        "rule": "!has(self.charts) || self.type == 'oci'",
        "message": "charts is for sources of type oci",
        "fieldPath": ".charts",
        "reason": "FieldValueForbidden",
    },
]
REF_RULE: JsonDict = {
    "rule": "(has(self.branch) ? 1 : 0) + (has(self.tag) ? 1 : 0) + (has(self.commit) ? 1 : 0) <= 1",
    "message": "give at most one of branch, tag and commit",
    "reason": "FieldValueInvalid",
}


class GitRef(Model):
    """Which commit of a git source to read; at most one field. None: the remote's default branch."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [REF_RULE]})

    branch: str | None = Field(default=None, description="A branch; its head is followed.", max_length=255)
    tag: str | None = Field(default=None, description="A tag.", max_length=255)
    commit: str | None = Field(
        default=None, description="A full commit id.", pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$"
    )


class DefinitionPolicy(Model):
    """What app definitions (tomo format) of a git source may ask for; refused when not allowed."""

    allow_privileged: bool = Field(
        default=False, description="Allow definitions with `docker.privileged: true`."
    )
    allowed_capabilities: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list,
        description="Linux capabilities definitions may add (e.g. NET_ADMIN); any other is refused.",
        max_length=32,
    )


class UploadStorage(Model):
    """Where an upload source's charts are stored (docs/sources/upload.md)."""

    namespace: str = Field(
        description="The namespace whose labelled Secrets (kubemart.io/upload=chart) hold the uploaded charts; "
        "whoever may create Secrets there may add apps to this source. The operator reads no other.",
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    )


class VerifyProvider(StrEnum):
    PGP = "pgp"
    """Helm provenance files (.prov) signed with PGP; the keyring is in the Secret's `keyring`."""
    COSIGN = "cosign"
    """cosign key-based signatures of OCI artifacts; the public key is in the Secret's `cosign.pub`."""


class Verify(Model):
    """Every chart of the source must carry a valid signature; one that does not is never installed."""

    provider: VerifyProvider = Field(
        description="pgp (helm provenance files, for type helm) or cosign (for type oci)."
    )
    secret_ref: SecretReference = Field(
        description="A Secret with the keys to trust: `keyring` (helm) or `cosign.pub` (cosign)."
    )


class MarketSourceSpec(Model):
    """Where the catalog is and how to sync it."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [INTERVAL_RULE, *URL_RULES]})

    type: SourceType = Field(
        default=SourceType.HELM, description="How the catalog is served: helm, oci, git or upload."
    )
    url: str | None = Field(
        default=None,
        description="helm: https://charts.example.com; oci: oci://host[:port]/path; git: https://, ssh:// "
        "or user@host:path. Not set for upload.",
        min_length=1,
        max_length=2048,
        pattern=r"^((https?|oci|ssh)://[^\s]+|[A-Za-z0-9._-]+@[^\s:/]+:[^\s]+)$",
    )
    ref: GitRef | None = Field(default=None, description="git: the branch, tag or commit to read.")
    path: str | None = Field(
        default=None,
        description="git: the directory to read apps from (default: the whole tree).",
        max_length=1024,
        pattern=r"^[^\s]*$",
    )
    charts: list[Annotated[str, StringConstraints(max_length=253)]] = Field(
        default_factory=list,
        description="oci: the charts under url, for registries that do not serve their catalog.",
        max_length=1000,
    )
    upload: UploadStorage | None = Field(
        default=None, description="upload: where the uploaded charts are stored (required for that type)."
    )
    definitions: DefinitionPolicy | None = Field(
        default=None, description="git: what app definitions may ask for (privileged, capabilities)."
    )
    values: dict[str, Any] | None = Field(
        default=None,
        description="Default values for every app of the source, under each AppInstall's own values "
        "(for example what Olares injects at install time: userspace, olaresEnv, domain).",
    )
    verify: Verify | None = Field(
        default=None, description="Require every chart to be signed, and check it before install."
    )
    olares_manifests: bool = Field(
        default=False,
        description="helm, oci: every chart may be an Olares app: read OlaresManifest.yaml from the archive of "
        "each chart's newest version (once per digest) for its title, categories, entrances and resources. "
        "Without it only charts annotated kubemart.io/manifest: olares, or already cached, are read.",
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
        description="What identifies the last good catalog: sha256 of a Helm index, the git commit, a hash of "
        "an OCI registry's chart, tag and digest list, or of an upload namespace's stored charts.",
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

    def location(self) -> str:
        """Where the catalog is, for messages: the url, or what an upload source holds."""
        if self.spec.url:
            return self.spec.url
        where = f" in namespace {self.spec.upload.namespace}" if self.spec.upload else ""
        return f"uploaded charts{where}"
