"""AppInstall: an installed app (a Helm release kept true to its spec), namespaced."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from kubemart.models.marketapp import Requirements
from kubemart.models.resource import (
    DURATION_PATTERN,
    KindInfo,
    Model,
    PrinterColumn,
    ReconciledStatus,
    Resource,
)

# Exact versions and Helm-style ranges: ^1.2, ~1.2.0, >=1 <2, 1.2.x, 1.2 - 1.4, a || b.
# The operator parses the range fully and answers InvalidVersion; this only keeps out garbage.
VERSION_PATTERN = r"^[0-9A-Za-z.*^~<>=!|, +-]+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Every user string and list has a bound (issue #9): Kubernetes' own for names (253 for objects, 63 for
# namespaces), the same for catalog names. spec.values is free-form: its top level is bounded here, its
# depth and size by the chart's ValidatingAdmissionPolicy and, whatever was admitted, by the operator.
NAME_MAX = 253
VALUES_MAX_KEYS = 1000
VALUES_FROM_MAX = 16
DEPENDS_ON_MAX = 32
# Nested option objects default to {} so that the API server fills in their own defaults.
_EMPTY_DEFAULT: JsonDict = {"default": {}}


class ValuesSourceKind(StrEnum):
    CONFIG_MAP = "ConfigMap"
    SECRET = "Secret"


class ValuesReference(Model):
    """A ConfigMap or Secret key holding a YAML values document."""

    kind: ValuesSourceKind = Field(description="ConfigMap or Secret, in the AppInstall's namespace.")
    name: str = Field(description="Name of the ConfigMap or Secret.", min_length=1, max_length=NAME_MAX)
    key: str = Field(
        default="values.yaml",
        description="The key holding a YAML values document.",
        min_length=1,
        max_length=NAME_MAX,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )
    optional: bool = Field(default=False, description="If true, a missing object or key is skipped.")


class DependencyReference(Model):
    """Another AppInstall that must be Ready (at its current generation) before this one installs or upgrades."""

    name: str = Field(description="The AppInstall's name.", min_length=1, max_length=NAME_MAX)
    namespace: str | None = Field(
        default=None,
        description="Its namespace; default: this AppInstall's.",
        pattern=DNS_LABEL,
        max_length=63,
    )


class Remediation(Model):
    """What to do when an operation fails."""

    retries: int = Field(default=0, ge=0, description="How many times to retry a failed operation.")


class UpgradeStrategy(StrEnum):
    ROLLBACK = "rollback"
    UNINSTALL = "uninstall"


class UpgradeRemediation(Model):
    """What to do when an upgrade fails."""

    retries: int = Field(default=0, ge=0, description="How many times to retry a failed upgrade.")
    strategy: UpgradeStrategy = Field(
        default=UpgradeStrategy.ROLLBACK,
        description="What to do after a failed upgrade: rollback or uninstall.",
    )


class InstallOptions(Model):
    """How to install."""

    remediation: Remediation = Field(
        default_factory=Remediation,
        description="Retries of a failed install.",
        json_schema_extra=_EMPTY_DEFAULT,
    )


class UpgradeOptions(Model):
    """How to upgrade."""

    remediation: UpgradeRemediation = Field(
        default_factory=UpgradeRemediation,
        description="Retries and strategy for a failed upgrade.",
        json_schema_extra=_EMPTY_DEFAULT,
    )


class DriftMode(StrEnum):
    ENABLED = "enabled"
    """Detect drift from the release's manifest and correct it."""
    WARN = "warn"
    """Detect drift and report it, without correcting."""
    DISABLED = "disabled"
    """Do not look for drift."""


class DriftDetection(Model):
    """Whether to detect and correct changes made to the release's objects."""

    mode: DriftMode = Field(default=DriftMode.ENABLED, description="enabled, warn or disabled.")


def _immutable(field: str) -> JsonDict:
    # Changing either would orphan the release that exists; say so at admission instead.
    return {
        "rule": f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        "message": f"{field} cannot be changed after creation; create a new AppInstall instead",
        "reason": "FieldValueForbidden",
    }


class AppInstallSpec(Model):
    """Which app to install, at which version, with which values."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [_immutable("releaseName"), _immutable("targetNamespace")]
        }
    )

    source: str = Field(description="The MarketSource to install from.", min_length=1, max_length=NAME_MAX)
    app: str = Field(description="The app (chart) name in that source.", min_length=1, max_length=NAME_MAX)
    version: str | None = Field(
        default=None,
        description="An exact version (1.2.3) or a semver range (^1.2, ~1.2.0, >=1 <2); default: latest stable.",
        pattern=VERSION_PATTERN,
        max_length=256,
    )
    values: dict[str, Any] | None = Field(
        default=None,
        description=f"Helm values; wins over valuesFrom. At most {VALUES_MAX_KEYS} keys at the top level.",
        max_length=VALUES_MAX_KEYS,
    )
    values_from: list[ValuesReference] = Field(
        default_factory=list,
        description="ConfigMaps and Secrets holding values; later entries win.",
        max_length=VALUES_FROM_MAX,
    )
    target_namespace: str | None = Field(
        default=None,
        description="Where the release goes; default: the AppInstall's namespace.",
        pattern=DNS_LABEL,
        max_length=63,
    )
    release_name: str | None = Field(
        default=None,
        description="The Helm release name; default: metadata.name.",
        pattern=DNS_LABEL,
        max_length=53,
    )
    service_account_name: str | None = Field(
        default=None,
        description=(
            "A ServiceAccount in the AppInstall's namespace: helm, and the operator's corrections of the "
            "release's objects, act with its permissions; default: the operator's default, if it has one."
        ),
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
    )
    timeout: str = Field(
        default="5m",
        description="How long an install or upgrade may take to become ready.",
        pattern=DURATION_PATTERN,
        max_length=64,
    )
    suspend: bool = Field(default=False, description="Pause all reconciliation of this app.")
    stopped: bool = Field(
        default=False, description="Scale the app's workloads to zero; false restores them."
    )
    install: InstallOptions = Field(
        default_factory=InstallOptions, description="Install options.", json_schema_extra=_EMPTY_DEFAULT
    )
    upgrade: UpgradeOptions = Field(
        default_factory=UpgradeOptions, description="Upgrade options.", json_schema_extra=_EMPTY_DEFAULT
    )
    drift_detection: DriftDetection = Field(
        default_factory=DriftDetection, description="Status correction.", json_schema_extra=_EMPTY_DEFAULT
    )
    depends_on: list[DependencyReference] = Field(
        default_factory=list,
        description=(
            "AppInstalls that must be Ready at their current generation before this one installs or "
            f"upgrades (docs/dependencies.md). At most {DEPENDS_ON_MAX}."
        ),
        max_length=DEPENDS_ON_MAX,
    )


class Phase(StrEnum):
    PENDING = "Pending"
    AWAITING_PAYMENT = "AwaitingPayment"
    INSTALLING = "Installing"
    UPGRADING = "Upgrading"
    RUNNING = "Running"
    DEGRADED = "Degraded"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    SUSPENDED = "Suspended"
    UNINSTALLING = "Uninstalling"
    FAILED = "Failed"


class Entrance(Model):
    """One way to open the app."""

    name: str = Field(description="Which Service or Ingress.")
    url: str = Field(description="How to open the app.")


class Operation(Model):
    """An operation in flight."""

    type: str = Field(description="install, upgrade, rollback, uninstall, stop, resume, correct.")
    phase: str = Field(description="Running, Succeeded or Failed.")
    started_at: datetime | None = Field(default=None, description="When the operation started.")
    attempt: int = Field(default=1, description="Which try this is.")
    message: str = Field(default="", description="What is happening.")


class HistoryEntry(Model):
    """One past operation."""

    operation: str = Field(description="install, upgrade, rollback, uninstall, ...")
    from_version: str | None = Field(default=None, description="The version before.")
    to_version: str | None = Field(default=None, description="The version after.")
    revision: int | None = Field(default=None, description="The Helm release revision it made.")
    result: str = Field(description="Succeeded or Failed.")
    started_at: datetime | None = Field(default=None, description="When it started.")
    finished_at: datetime | None = Field(default=None, description="When it ended.")
    message: str = Field(default="", description="What happened.")


class Corrections(Model):
    """Drift corrections made so far."""

    count: int = Field(default=0, description="How many drift corrections were made.")
    last_time: datetime | None = Field(default=None, description="When the last correction was made.")
    last_summary: str | None = Field(default=None, description="What the last correction changed.")


class OwnedRelease(Model):
    """The Helm release this AppInstall installed, as the operator recorded it."""

    revision: int | None = Field(
        default=None, description="The newest revision known to be this AppInstall's."
    )
    secret_uid: str | None = Field(
        default=None,
        description="uid of that revision's storage Secret: proof of ownership that labels alone are not.",
        max_length=64,
    )


class LastFailure(Model):
    """The last failed install or upgrade."""

    operation: str = Field(description="install or upgrade.", max_length=32)
    reason: str = Field(description="Why, as a CamelCase word.", max_length=128)
    message: str = Field(default="", description="What happened and what to do.", max_length=2048)
    retryable: bool = Field(default=True, description="Whether trying again may help.")
    time: datetime | None = Field(default=None, description="When it failed.")


class AppInstallStatus(ReconciledStatus):
    """What the operator last saw and did; written only by the operator."""

    phase: Phase | None = Field(default=None, description="Where the app is in its lifecycle.")
    installed_version: str | None = Field(default=None, description="The chart version installed.")
    chart_digest: str | None = Field(default=None, description="sha256 of the installed chart archive.")
    release_revision: int | None = Field(default=None, description="The Helm release revision.")
    applied_hash: str | None = Field(default=None, description="Hash of chart digest and effective values.")
    entrances: list[Entrance] = Field(default_factory=list, description="How to open the app.")
    operation: Operation | None = Field(default=None, description="The operation in flight.")
    history: list[HistoryEntry] = Field(default_factory=list, description="Past operations, newest first.")
    corrections: Corrections | None = Field(default=None, description="Drift corrections made.")
    install_failures: int | None = Field(
        default=None,
        description="Failed installs of the desired state last attempted (lastAttemptedGeneration and lastAttemptedHash).",
    )
    upgrade_failures: int | None = Field(
        default=None,
        description="Failed upgrades of the desired state last attempted (lastAttemptedGeneration and lastAttemptedHash).",
    )
    last_attempted_generation: int | None = Field(
        default=None, description="The generation of the last install or upgrade attempted."
    )
    last_attempted_hash: str | None = Field(
        default=None, description="Hash of chart digest and values of the last install or upgrade attempted."
    )
    owned_release: OwnedRelease | None = Field(
        default=None,
        description="The release this AppInstall installed and may upgrade, roll back and uninstall.",
    )
    last_failure: LastFailure | None = Field(
        default=None, description="Why the last install or upgrade failed; cleared when one succeeds."
    )
    stopped_replicas: dict[str, int] | None = Field(
        default=None,
        description="Replicas of each workload (Kind/name) before the app was stopped, to restore.",
    )
    requirements: Requirements | None = Field(
        default=None,
        description="The catalog's requirements the installed version was checked against; an upgrade "
        "is checked only for what it asks beyond them.",
    )


class AppInstall(Resource):
    """An installed app: a Helm release kept true to this spec."""

    info = KindInfo(
        kind="AppInstall",
        plural="appinstalls",
        singular="appinstall",
        short_names=("ai",),
        scope="Namespaced",
        printer_columns=(
            PrinterColumn("App", ".spec.app"),
            PrinterColumn("Version", ".status.installedVersion"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn("Status", '.status.conditions[?(@.type=="Ready")].message', priority=1),
        ),
    )
    spec: AppInstallSpec
    status: AppInstallStatus = Field(default_factory=AppInstallStatus)
