"""After a failed upgrade: roll back to the last good revision, or uninstall, as spec.upgrade says."""

from __future__ import annotations

from datetime import UTC, datetime

from kubemart.adapters.helm import Helm, HelmError, Slot
from kubemart.models.appinstall import OwnedRelease, UpgradeStrategy
from kubemart.release.outcome import Failure, Note, Outcome, entry
from kubemart.release.state import ReleaseState


async def remediate(helm: Helm, state: ReleaseState, *, slot: Slot) -> Outcome:
    strategy = state.spec.upgrade.remediation.strategy
    last = state.release.last_deployed_revision
    wanted = state.desired.version.version if state.desired else None
    started = datetime.now(UTC)
    rollback = strategy is UpgradeStrategy.ROLLBACK and last is not None
    op = "rollback" if rollback else "uninstall"
    try:
        if rollback:
            await helm.rollback(
                release=state.release_name,
                namespace=state.target_namespace,
                revision=last,
                timeout_seconds=state.timeout_seconds,
                acting_as=state.account,
                slot=slot,
            )
            message = f"Rolled back release {state.release_name} to revision {last} after the failed upgrade."
            updates: dict[str, object] = {"operation": None, "owned_release": OwnedRelease()}
            to_version = state.release.last_deployed_version or state.status.installed_version
        else:
            await helm.uninstall(
                release=state.release_name,
                namespace=state.target_namespace,
                timeout_seconds=state.timeout_seconds,
                acting_as=state.account,
                slot=slot,
            )
            message = f"Uninstalled release {state.release_name} after the failed upgrade; the next attempt installs it afresh."
            updates = {"operation": None, "installed_version": None, "applied_hash": None}
            to_version = None
    except HelmError as err:
        finished = datetime.now(UTC)
        return Outcome(
            updates={"operation": None},
            history=(
                entry(
                    op, "Failed", started=started, finished=finished, from_version=wanted, message=err.message
                ),
            ),
            notes=(Note("Warning", "RemediationFailed", err.message),),
            failure=Failure("RemediationFailed", err.message, err.retryable),
        )
    finished = datetime.now(UTC)
    return Outcome(
        updates=updates,
        history=(
            entry(
                op,
                "Succeeded",
                started=started,
                finished=finished,
                from_version=wanted,
                to_version=to_version,
                revision=last if rollback else None,
                message=message,
            ),
        ),
        notes=(Note("Normal", "Remediated", message),),
    )
