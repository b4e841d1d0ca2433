"""The next action for an AppInstall, from what observe() saw and the time (pure).

One function maps every situation to one action, as Flux helm-controller's `atomic_release.go`
does; the reconcile runs it, then observes again. Nothing here reads or writes anything, and the
time is passed in, so every rule has a named case in tests/unit/test_release_decide.py.
"""

from __future__ import annotations

from kubemart.domain.capacity import judge
from kubemart.models.appinstall import DriftMode, Phase
from kubemart.release.state import (
    PENDING,
    PENDING_GRACE,
    Action,
    Blocker,
    Counters,
    Decision,
    Ownership,
    ReleaseState,
)


def spent(state: ReleaseState) -> Counters:
    """Pure: the retries spent on the state wanted now.

    Counters belong to one desired state (the generation and the hash of chart and values that were
    attempted): a new spec, new values or a new catalog version start from zero, and so does a
    person's retry request.
    """
    status = state.status
    if state.retry_requested or state.desired is None:
        return Counters()
    if status.last_attempted_generation != state.generation:
        return Counters()
    if status.last_attempted_hash != state.desired.applied_hash:
        return Counters()
    return Counters(
        install_failures=status.install_failures or 0, upgrade_failures=status.upgrade_failures or 0
    )


def exhausted(state: ReleaseState) -> bool:
    """Pure: no retry is left for the state wanted now."""
    used = spent(state)
    spec = state.spec
    return (
        used.install_failures > spec.install.remediation.retries
        or used.upgrade_failures > spec.upgrade.remediation.retries
    )


def in_sync(state: ReleaseState) -> bool:
    """Pure: the deployed release is the one this AppInstall last applied, with the wanted chart and values."""
    assert state.desired is not None
    status = state.status
    if status.applied_hash != state.desired.applied_hash:
        return False
    # Someone else's helm upgrade or rollback makes a new revision: apply ours again.
    return status.release_revision is None or status.release_revision == state.release.revision


def scaling(state: ReleaseState) -> bool:
    """Pure: the live workloads' replicas must move for a stop, its undoing, or a revoked licence."""
    live = state.live
    if live is None:
        return False
    holding = state.spec.stopped or not state.licensed or bool(state.status.stopped_replicas)
    return holding and any(d.fields == ("spec.replicas",) for d in live.drift)


def to_correct(state: ReleaseState) -> bool:
    """Pure: there is drift that the mode says to correct, or replicas to move."""
    live = state.live
    if live is None:
        return False
    if scaling(state):
        return True
    return state.spec.drift_detection.mode is DriftMode.ENABLED and bool(live.drift)


def does_not_fit(state: ReleaseState) -> Decision | None:
    """Pure: the install or upgrade waits, without running helm, when the app's requirements find no
    node or its chart's kubeVersion excludes the cluster (docs/requirements.md); None: it may go on.
    A running app is never blocked: only what an upgrade to another version asks beyond the installed
    one counts."""
    if state.fit is None:
        return None
    installed = state.release.exists
    if (
        installed
        and state.desired is not None
        and state.desired.version.version == state.status.installed_version
    ):
        return None  # new values for the same chart: the catalog's requirements are not its version's
    verdict = judge(state.fit, app=state.spec.app, installed=installed)
    if verdict is None:
        return None
    phase = (
        (state.status.phase or Phase.RUNNING)
        if installed
        else Phase.FAILED
        if verdict.stalled
        else Phase.PENDING
    )
    blocker = Blocker(verdict.reason, verdict.message, stalled=verdict.stalled, phase=phase)
    return Decision(Action.BLOCKED, verdict.reason, blocker=blocker)


def decide(state: ReleaseState, *, now: float) -> Decision:
    """Pure: the one next action. `now` is Unix time."""
    if state.suspended:
        return Decision(Action.SUSPENDED, "spec.suspend")
    if state.holder is not None:
        return Decision(Action.RELEASE_CONFLICT, "an older AppInstall claims the release")
    release = state.release
    if release.exists and release.ownership is Ownership.FOREIGN and not state.adoption_allowed:
        return Decision(Action.RELEASE_NOT_OWNED, "the release was installed by someone else")
    if state.blocker is not None:
        return Decision(Action.BLOCKED, state.blocker.reason)
    waiting = state.dependencies
    if waiting is not None and waiting.stalled:
        return Decision(Action.WAIT_DEPENDENCIES, waiting.reason)  # a cycle: a spec error, like a blocker
    if not state.licensed:
        if release.exists:
            if state.live_error is not None:
                return Decision(Action.LIVE_UNREADABLE, "licence gone, objects unreadable")
            if scaling(state):
                return Decision(Action.REVOKE, "licence gone: stop the workloads")
            return Decision(Action.STEADY, "licence gone, workloads stopped")
        return Decision(Action.BLOCKED, "payment required")
    if state.desired is None:
        return Decision(Action.BLOCKED, "nothing desired")
    ready_to_apply = Action.INSTALL if state.chart is not None else Action.FETCH_CHART
    if not release.exists:
        if waiting is not None:
            return Decision(Action.WAIT_DEPENDENCIES, "no release, dependencies not ready")
        if exhausted(state):
            return Decision(Action.RETRIES_EXHAUSTED, "no release, retries spent")
        if (unfit := does_not_fit(state)) is not None:
            return unfit
        return Decision(ready_to_apply, "no release")
    status = release.status
    if status in PENDING:
        waited = now - (release.modified_at or 0.0)
        if waited < PENDING_GRACE:
            return Decision(
                Action.WAIT_PENDING, f"{status} for {waited:.0f}s", wait=PENDING_GRACE - waited + 0.5
            )
        if release.has_deployed:
            return Decision(Action.UNLOCK_ROLLBACK, f"{status}, abandoned, with a good revision")
        return Decision(Action.UNLOCK_UNINSTALL, f"{status}, abandoned, no good revision")
    if status == "uninstalling":
        return Decision(Action.UNLOCK_UNINSTALL, "left uninstalling")
    if status == "failed":
        if release.has_deployed:
            return Decision(Action.REMEDIATE, "failed with a good revision to go back to")
        if exhausted(state):
            return Decision(Action.RETRIES_EXHAUSTED, "failed first install, retries spent")
        return Decision(Action.UNLOCK_UNINSTALL, "failed first install")
    upgrade = Action.UPGRADE if state.chart is not None else Action.FETCH_CHART
    if not in_sync(state):
        if waiting is not None:
            return Decision(Action.WAIT_DEPENDENCIES, "out of sync, dependencies not ready")
        if exhausted(state):
            return Decision(Action.RETRIES_EXHAUSTED, "out of sync, retries spent")
        if (unfit := does_not_fit(state)) is not None:
            return unfit
        return Decision(upgrade, "out of sync")
    if state.live_error is not None:
        return Decision(Action.LIVE_UNREADABLE, "objects unreadable")
    if to_correct(state):
        return Decision(Action.CORRECT, "drift" if not scaling(state) else "replicas to move")
    return Decision(Action.STEADY, "in sync")
