"""Recover a release that a dead operation left pending, or a failed first install: roll back or uninstall."""

from __future__ import annotations

from kubemart.adapters.helm import Helm, HelmError, Slot
from kubemart.models.appinstall import OwnedRelease
from kubemart.release.outcome import Failure, Note, Outcome
from kubemart.release.state import Action, Decision, ReleaseState


async def unlock(helm: Helm, state: ReleaseState, decision: Decision, *, slot: Slot) -> Outcome:
    release = state.release
    was = release.status or "pending"
    try:
        if decision.action is Action.UNLOCK_ROLLBACK and release.last_deployed_revision is not None:
            target = release.last_deployed_revision
            await helm.rollback(
                release=state.release_name,
                namespace=state.target_namespace,
                revision=target,
                timeout_seconds=state.timeout_seconds,
                acting_as=state.account,
                slot=slot,
            )
            note = Note(
                "Warning",
                "ReleaseRecovered",
                f"Release {state.release_name} was stuck in {was}; rolled back to revision {target}.",
            )
            return Outcome(updates={"operation": None, "owned_release": OwnedRelease()}, notes=(note,))
        await helm.uninstall(
            release=state.release_name,
            namespace=state.target_namespace,
            timeout_seconds=state.timeout_seconds,
            acting_as=state.account,
            slot=slot,
        )
    except HelmError as err:
        return Outcome(
            updates={"operation": None},
            failure=Failure(err.reason, err.message, err.retryable),
            notes=(Note("Warning", err.reason, err.message, only_on_change=True),),
        )
    note = Note(
        "Normal",
        "ReleaseRecovered",
        f"Release {state.release_name} was {was} with no good revision; uninstalled it to install afresh.",
    )
    return Outcome(
        updates={"operation": None, "installed_version": None, "applied_hash": None}, notes=(note,)
    )
