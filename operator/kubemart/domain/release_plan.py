"""What to do with a release, given what is wanted and what is there (pure).

The observe step gathers a `Desired` and an `Observed`; `decide` maps them to one action, the
way Flux helm-controller's atomic release does; the service runs it and observes again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    NONE = "none"
    INSTALL = "install"
    UPGRADE = "upgrade"
    UNLOCK_ROLLBACK = "unlock-rollback"
    """A release left pending by a dead operation, with a good revision to go back to."""
    UNLOCK_UNINSTALL = "unlock-uninstall"
    """A release with no good revision (a failed or dead first install): uninstall it, then install afresh.

    Helm cannot repair a failed first install by upgrading it: its three-way merge starts from the
    failed manifest and leaves the broken fields in place. Flux remediates the same way."""


PENDING = ("pending-install", "pending-upgrade", "pending-rollback")


@dataclass(frozen=True)
class Desired:
    version: str
    chart_digest: str
    applied_hash: str


@dataclass(frozen=True)
class Observed:
    release_status: str | None
    """Helm's status of the newest revision; None when there is no release."""
    has_deployed_revision: bool
    applied_hash: str | None
    """status.appliedHash: what we last applied successfully."""
    operation_in_flight: bool = False
    """An operation of ours is running on this release right now."""


def decide(desired: Desired, observed: Observed) -> Action:
    """Pure."""
    status = observed.release_status
    if status is None or status == "uninstalled":
        return Action.INSTALL
    if status in PENDING:
        if observed.operation_in_flight:
            return Action.NONE
        return Action.UNLOCK_ROLLBACK if observed.has_deployed_revision else Action.UNLOCK_UNINSTALL
    if status == "uninstalling":
        return Action.UNLOCK_UNINSTALL
    if status == "deployed" and observed.applied_hash == desired.applied_hash:
        return Action.NONE
    if status == "failed" and not observed.has_deployed_revision:
        return Action.UNLOCK_UNINSTALL
    return Action.UPGRADE
