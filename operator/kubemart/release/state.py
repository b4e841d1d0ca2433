"""What one AppInstall reconcile knows, frozen: everything observe() read, for decide() to judge.

The shape follows Flux helm-controller's `internal/reconcile`: observe gathers the desired state
(spec, catalog entry, values, licence, account) and the observed one (Helm's release, the live
objects, the retry counters kept in status) once; decide is a pure function of this and the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from kubemart.domain.capacity import FitInputs
from kubemart.domain.live_state import LiveState
from kubemart.domain.tenancy import Account
from kubemart.models.appinstall import AppInstallSpec, AppInstallStatus, OwnedRelease, Phase
from kubemart.models.marketapp import AppVersion
from kubemart.models.marketsource import MarketSource
from kubemart.release.dependencies import Waiting

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
PENDING_GRACE = 10.0
"""Seconds a release may sit pending before the operator takes it for abandoned (a person's helm
command may still be running)."""


class Ownership(StrEnum):
    ABSENT = "absent"
    """No release of that name in the target namespace (or only uninstalled records)."""
    OURS = "ours"
    """Installed by this AppInstall (its owner labels), or recorded in its status before labels existed."""
    FOREIGN = "foreign"
    """Installed by someone else: a person, another tool, or another AppInstall."""


@dataclass(frozen=True)
class Blocker:
    """Why the desired state cannot be worked out or reached now, as the Ready condition will say."""

    reason: str
    message: str
    stalled: bool = False
    """Retrying cannot help until the spec, a referenced object or the catalog changes."""
    phase: Phase = Phase.PENDING


@dataclass(frozen=True)
class Desired:
    version: AppVersion
    chart_digest: str
    applied_hash: str
    values: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Release:
    """Helm's release as its storage shows it."""

    status: str | None = None
    """Helm's status of the newest revision (deployed, failed, pending-upgrade, ...); None: no release."""
    revision: int | None = None
    modified_at: float | None = None
    """Unix time of the newest revision's last write."""
    last_deployed_revision: int | None = None
    last_deployed_version: str | None = None
    ownership: Ownership = Ownership.ABSENT
    owner: str | None = None
    """Who the owner labels name (`namespace/name`), when they name someone else."""

    @property
    def exists(self) -> bool:
        return self.status is not None and self.status != "uninstalled"

    @property
    def has_deployed(self) -> bool:
        return self.last_deployed_revision is not None


@dataclass(frozen=True)
class Counters:
    """Retries spent on one desired state; kept in status, so they survive restarts."""

    install_failures: int = 0
    upgrade_failures: int = 0


Live = LiveState
"""The release's objects in the cluster, compared with its manifest (services/correction.read_live)."""


@dataclass(frozen=True)
class ReleaseState:
    """Everything one reconcile of an AppInstall observed."""

    namespace: str
    name: str
    generation: int
    spec: AppInstallSpec
    status: AppInstallStatus
    """The status as read (the operator's memory); never changed here."""
    target_namespace: str
    release_name: str
    suspended: bool = False
    blocker: Blocker | None = None
    source: MarketSource | None = None
    desired: Desired | None = None
    chart: Path | None = None
    """The desired chart in the local cache; None until it is fetched."""
    licensed: bool = True
    """False for a paid app without a verified licence."""
    checkout_url: str | None = None
    licence_problem: str | None = None
    """Why no licence could be checked at all (the source's keys cannot be read)."""
    account: Account | None = None
    release: Release = field(default_factory=Release)
    owned_record: OwnedRelease | None = None
    """The newest revision, to record in status when the release is ours."""
    holder: str | None = None
    """An older AppInstall (`namespace/name`) that claims the same release."""
    adoption_allowed: bool = False
    """This AppInstall asks to adopt a foreign release and an admin allows it in the target namespace."""
    retry_requested: bool = False
    """A person set a new kubemart.io/reconcile-requested-at: retries start again."""
    live: Live | None = None
    """Read when the release is deployed; None otherwise."""
    live_error: str | None = None
    timeout_seconds: float = 300.0
    """spec.timeout, capped by the operator's setting."""
    timeout_capped: bool = False
    fit: FitInputs | None = None
    """For the requirements check (domain.capacity): read only before an install or an upgrade, with
    the check on."""
    dependencies: Waiting | None = None
    """Other AppInstalls it waits for before installing or upgrading (release/dependencies.py)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def owned(self) -> bool:
        return self.release.ownership is Ownership.OURS or (
            self.release.ownership is Ownership.FOREIGN and self.adoption_allowed
        )


class Action(StrEnum):
    """What a reconcile does next; each one that acts has one module in release/actions/."""

    SUSPENDED = "suspended"
    BLOCKED = "blocked"
    WAIT_DEPENDENCIES = "wait-dependencies"
    """Installs and upgrades wait for other AppInstalls (spec.dependsOn, the catalog's dependencies)."""
    RELEASE_CONFLICT = "release-conflict"
    RELEASE_NOT_OWNED = "release-not-owned"
    WAIT_PENDING = "wait-pending"
    FETCH_CHART = "fetch-chart"
    INSTALL = "install"
    UPGRADE = "upgrade"
    UNLOCK_ROLLBACK = "unlock-rollback"
    """A release left pending by a dead operation, with a good revision to go back to."""
    UNLOCK_UNINSTALL = "unlock-uninstall"
    """A release with no good revision (a failed or dead first install): uninstall it, then install afresh.

    Helm cannot repair a failed first install by upgrading it: its three-way merge starts from the
    failed manifest and leaves the broken fields in place. Flux remediates the same way."""
    REMEDIATE = "remediate"
    """After a failed upgrade: roll back to the last good revision, or uninstall, as the spec says."""
    RETRIES_EXHAUSTED = "retries-exhausted"
    REVOKE = "revoke"
    """A paid app whose licence is gone: stop its workloads, keep its data."""
    CORRECT = "correct"
    """Drift (or a stop, or its undoing) to correct on the live objects."""
    LIVE_UNREADABLE = "live-unreadable"
    STEADY = "steady"
    """In sync: report health, and drift that the mode says to leave."""


@dataclass(frozen=True)
class Decision:
    action: Action
    why: str = ""
    """A few words for the log and the tests: which rule decided."""
    wait: float | None = None
    """For WAIT_PENDING: seconds until the grace is over."""
    blocker: Blocker | None = None
    """For BLOCKED by a rule of decide itself (the app does not fit the cluster): what to report."""

    @property
    def runs_helm(self) -> bool:
        return self.action in HELM_ACTIONS


HELM_ACTIONS = frozenset(
    {Action.INSTALL, Action.UPGRADE, Action.UNLOCK_ROLLBACK, Action.UNLOCK_UNINSTALL, Action.REMEDIATE}
)
