"""From what a reconcile saw, decided and did, to the AppInstall's status (pure).

The only place phase, conditions and history are worked out, as Flux's `summarize` is for a
HelmRelease: the reconcile writes what this returns, posts its Events and sleeps as it says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from kubemart.domain.capacity import INSUFFICIENT
from kubemart.domain.conditions import Summary
from kubemart.domain.drift import Drift
from kubemart.models.appinstall import (
    AppInstallStatus,
    Corrections,
    Operation,
    Phase,
)
from kubemart.models.marketapp import Requirements
from kubemart.release.decide import exhausted, spent
from kubemart.release.outcome import Note, Outcome, entry
from kubemart.release.state import Action, Decision, Ownership, ReleaseState

_PROBLEMS = (Action.BLOCKED, Action.RELEASE_CONFLICT, Action.RELEASE_NOT_OWNED, Action.LIVE_UNREADABLE)
RETRY_HINT = "set the annotation kubemart.io/reconcile-requested-at to any new value to retry"


@dataclass(frozen=True)
class Next:
    """When to reconcile again: after `after` seconds (negative: the resync interval), with growing
    backoff, or only when an event comes."""

    after: float | None = None
    backoff: bool = False


NOW = Next(after=0.0)
BACKOFF = Next(backoff=True)
WAIT = Next()
RESYNC = Next(after=-1.0)


@dataclass(frozen=True)
class Report:
    status: AppInstallStatus
    summary: Summary
    notes: tuple[Note, ...]
    next: Next


def base_status(state: ReleaseState, *, now: datetime, requested: str | None) -> AppInstallStatus:
    """The status to start from: the last one, with an operation that a dead process left noted in history."""
    status = state.status.model_copy(deep=True)
    status.last_handled_reconcile_at = requested or status.last_handled_reconcile_at
    op = status.operation
    if op is not None and op.phase in ("Running", "Queued"):
        status.history = [
            entry(
                op.type,
                "Interrupted",
                started=op.started_at or now,
                finished=now,
                from_version=status.installed_version,
                message=f"The operator stopped while this {op.type} ran; the release is checked and recovered if needed.",
            ),
            *status.history,
        ]
        status.operation = None
    return status


def progress(
    state: ReleaseState, decision: Decision, *, now: datetime, attempt: int, queued: str | None = None
) -> tuple[AppInstallStatus, Summary]:
    """Pure: the status while a helm operation waits for a slot (`queued` says why) or runs."""
    status = state.status.model_copy(deep=True)
    op = operation_name(decision)
    version = state.desired.version.version if state.desired else status.installed_version
    what = f"helm {op} of {state.spec.app} {version or ''}".strip()
    status.operation = Operation(
        type=op,
        phase="Queued" if queued else "Running",
        started_at=now,
        attempt=attempt,
        message=f"{op} {state.spec.app} {version or ''}".strip(),
    )
    status.phase = Phase.INSTALLING if not state.release.has_deployed else Phase.UPGRADING
    if queued:
        return status, Summary(
            None, "WaitingForHelmSlot", f"Waiting to run {what}: {queued}.", reconciling=True
        )
    return status, Summary(None, "Progressing", f"Running {what} (attempt {attempt}).", reconciling=True)


def operation_name(decision: Decision) -> str:
    return {
        Action.INSTALL: "install",
        Action.UPGRADE: "upgrade",
        Action.REMEDIATE: "remediate",
    }.get(decision.action, "recover")


def summarize(
    state: ReleaseState,
    decision: Decision,
    outcome: Outcome,
    *,
    now: datetime,
    history_limit: int,
    requested: str | None = None,
) -> Report:
    """Pure: the status, conditions, Events and next reconcile for this pass."""
    status = base_status(state, now=now, requested=requested)
    if state.release.ownership is Ownership.OURS and state.owned_record is not None:
        status.owned_release = state.owned_record  # proven this pass: keep the newest revision's uid
    for name, value in outcome.updates.items():
        setattr(status, name, value)
    status.history = [*reversed(outcome.history), *status.history][:history_limit]
    notes = list(outcome.notes)
    summary, after = _conditions(state, decision, outcome, status, notes, now)
    if decision.action in _PROBLEMS:
        notes.append(Note("Warning", summary.reason, summary.message, only_on_change=True))
    return Report(status, summary, tuple(notes), after)


def _conditions(
    state: ReleaseState,
    decision: Decision,
    outcome: Outcome,
    status: AppInstallStatus,
    notes: list[Note],
    now: datetime,
) -> tuple[Summary, Next]:
    spec, action, failure = state.spec, decision.action, outcome.failure
    release = state.release_name
    if action is Action.SUSPENDED:
        status.phase = Phase.SUSPENDED
        return Summary(
            None, "Suspended", "Reconciliation is suspended; set spec.suspend to false to resume."
        ), WAIT
    if action is Action.BLOCKED:
        blocker = decision.blocker or state.blocker
        assert blocker is not None
        status.phase = blocker.phase
        # Waiting for capacity is woken by the capacity watch (services.capacity), not by backoff.
        waits = blocker.stalled or blocker.reason == INSUFFICIENT
        return Summary(False, blocker.reason, blocker.message, stalled=blocker.stalled), (
            RESYNC if waits else BACKOFF
        )
    if action is Action.WAIT_DEPENDENCIES:
        return _waiting(state, status, notes)
    if action is Action.RELEASE_CONFLICT:
        status.phase = Phase.FAILED
        message = (
            f"Release {release} in namespace {state.target_namespace} belongs to AppInstall {state.holder}; "
            "set a different spec.releaseName or targetNamespace."
        )
        return Summary(False, "ReleaseConflict", message, stalled=True), RESYNC
    if action is Action.RELEASE_NOT_OWNED:
        status.phase = Phase.FAILED
        who = (
            f"AppInstall {state.release.owner}"
            if state.release.owner
            else "someone else (helm, or another tool)"
        )
        message = (
            f"Release {release} in namespace {state.target_namespace} was installed by {who}, not by this "
            "AppInstall, so Kubemart will not upgrade, roll back or uninstall it. Set a different spec.releaseName, "
            f"or, to hand it over, a cluster admin labels namespace {state.target_namespace} "
            "kubemart.io/release-adoption=allowed and this AppInstall is annotated kubemart.io/adopt-release=true."
        )
        return Summary(False, "ReleaseNotOwned", message, stalled=True), RESYNC
    if action is Action.WAIT_PENDING:
        message = (
            f"Release {release} is {state.release.status} (another helm operation may still be running); "
            f"it is recovered if it stays so for {decision.wait or 0:.0f}s more."
        )
        return Summary(None, "ReleasePending", message, reconciling=True), Next(after=decision.wait)
    if action is Action.RETRIES_EXHAUSTED:
        status.phase = Phase.FAILED
        return _exhausted(state, status), WAIT
    if action in (Action.FETCH_CHART, Action.UNLOCK_ROLLBACK, Action.UNLOCK_UNINSTALL):
        if failure is not None:
            status.phase = Phase.PENDING if action is Action.FETCH_CHART else Phase.FAILED
            stalled = not failure.retryable
            return Summary(
                False, failure.reason, failure.message, stalled=stalled
            ), RESYNC if stalled else BACKOFF
        message = (
            f"Downloaded the chart of {spec.app} {state.desired.version.version}."
            if action is Action.FETCH_CHART and state.desired
            else f"Recovered release {release}; applying the spec again."
        )
        return Summary(None, "Progressing", message, reconciling=True), NOW
    if action in (Action.INSTALL, Action.UPGRADE):
        return _applied(state, decision, outcome, status)
    if action is Action.REMEDIATE:
        return _remediated(state, outcome, status)
    if action is Action.LIVE_UNREADABLE:
        status.phase = Phase.DEGRADED if state.licensed else Phase.STOPPED
        return Summary(
            False, "ApiUnavailable", f"Reading the app's objects failed: {state.live_error}"
        ), BACKOFF
    return _steady(state, outcome, status, notes, now)


def _waiting(state: ReleaseState, status: AppInstallStatus, notes: list[Note]) -> tuple[Summary, Next]:
    """Installs and upgrades wait for other AppInstalls; an installed app keeps running meanwhile.

    No timer: a change of a dependency wakes this one (the Store's "dependents" index).
    """
    waiting = state.dependencies
    assert waiting is not None
    if not state.release.exists:
        status.phase = Phase.PENDING
    notes.append(
        Note("Warning" if waiting.stalled else "Normal", waiting.reason, waiting.message, only_on_change=True)
    )
    summary = Summary(
        False, waiting.reason, waiting.message, reconciling=not waiting.stalled, stalled=waiting.stalled
    )
    return summary, WAIT


def _exhausted(state: ReleaseState, status: AppInstallStatus) -> Summary:
    last = status.last_failure
    if last is None:
        message = f"Retries are exhausted; fix the cause and {RETRY_HINT}."
        return Summary(False, "RetriesExhausted", message, stalled=True)
    if not last.retryable:
        return Summary(False, last.reason, last.message, stalled=True)
    used = spent(state)
    count = used.install_failures if last.operation == "install" else used.upgrade_failures
    retries = (
        state.spec.install.remediation.retries
        if last.operation == "install"
        else state.spec.upgrade.remediation.retries
    )
    return Summary(
        False,
        last.reason,
        last.message,
        stalled=True,
        stalled_reason="RetriesExhausted",
        stalled_message=(
            f"{last.operation} failed {count} time(s), more than the {retries} retries allowed; fix the cause and "
            f"{RETRY_HINT}."
        ),
    )


def _applied(
    state: ReleaseState, decision: Decision, outcome: Outcome, status: AppInstallStatus
) -> tuple[Summary, Next]:
    failure, app = outcome.failure, state.spec.app
    status.operation = None
    if failure is None:
        status.phase = Phase.RUNNING
        if state.fit is not None:  # what the next upgrade is checked beyond
            status.requirements = state.fit.requirements or Requirements()
        version = state.desired.version.version if state.desired else status.installed_version
        # Look once more at once: the revision's Secret uid is recorded, the objects checked.
        return Summary(True, "Succeeded", f"{app} {version} is installed and ready."), NOW
    status.phase = Phase.FAILED
    if decision.action is Action.UPGRADE and state.release.has_deployed:
        # Remediation (rollback or uninstall) comes next; the app is Stalled only once it is done.
        return Summary(False, failure.reason, failure.message, reconciling=True), NOW
    after = _with_status(state, status)
    if exhausted(after):
        return _exhausted(after, status), WAIT
    return Summary(False, failure.reason, failure.message), BACKOFF


def _remediated(state: ReleaseState, outcome: Outcome, status: AppInstallStatus) -> tuple[Summary, Next]:
    status.phase = Phase.FAILED
    last = status.last_failure
    reason, message = (last.reason, last.message) if last else ("UpgradeFailed", "The upgrade failed.")
    if outcome.failure is not None:
        return Summary(False, reason, f"{message} Remediation failed too: {outcome.failure.message}"), BACKOFF
    if exhausted(state):
        return Summary(False, reason, message, reconciling=True), NOW
    return Summary(False, reason, f"{message} Retrying.", reconciling=True), BACKOFF


def _with_status(state: ReleaseState, status: AppInstallStatus) -> ReleaseState:
    return replace(state, status=status, retry_requested=False)


def _steady(
    state: ReleaseState, outcome: Outcome, status: AppInstallStatus, notes: list[Note], now: datetime
) -> tuple[Summary, Next]:
    spec, live = state.spec, state.live
    app, version = (
        spec.app,
        status.installed_version or (state.desired.version.version if state.desired else ""),
    )
    holding = spec.stopped or not state.licensed
    drift = [d for d in (live.drift if live else ()) if not _is_scaling(d, state)]
    corrected = [d for d in outcome.corrected if d in drift]
    if corrected:
        text = "; ".join(d.describe() for d in corrected)
        count = (status.corrections.count if status.corrections else 0) + len(corrected)
        status.corrections = Corrections(count=count, last_time=now, last_summary=text[:1000])
    detected = [d for d in drift if d not in corrected]
    note = ""
    if detected:
        text = "; ".join(d.describe() for d in detected)[:600]
        note = f" Drift detected and not corrected (driftDetection.mode is {spec.drift_detection.mode.value}): {text}."
        if not outcome.correction_failures:
            notes.append(Note("Warning", "DriftDetected", f"Drift detected: {text}.", only_on_change=True))
    if outcome.correction_failures:
        note += f" Correcting drift failed: {'; '.join(outcome.correction_failures)[:600]}."
    if holding and live is not None and not status.stopped_replicas:
        status.stopped_replicas = {k: v for k, v in live.replicas.items() if v} or None
    if not state.licensed:
        status.phase = Phase.STOPPED
        message = (
            f"The licence for {app} was revoked (the payment was refunded): the app is stopped and its "
            "data kept. Buy it again with a new Payment to start it."
        )
        notes.append(Note("Warning", "LicenseRevoked", message, only_on_change=True))
        return Summary(False, "LicenseRevoked", message, stalled=True), RESYNC
    if spec.stopped:
        if live is not None and live.scaled_to_zero and not outcome.corrected:
            status.phase = Phase.STOPPED
            return Summary(
                True, "Stopped", f"{app} {version} is stopped; set spec.stopped to false to start it."
            ), RESYNC
        status.phase = Phase.STOPPING
        return Summary(None, "Stopping", f"Scaling {app}'s workloads to zero.", reconciling=True), RESYNC
    if (
        status.stopped_replicas
        and not outcome.correction_failures
        and not any(_is_scaling(d, state) for d in (live.drift if live else ()))
    ):
        status.stopped_replicas = None
    if live is not None and live.unreadable:
        # They cannot be checked, so drift on them cannot be corrected either: say so once.
        text = "; ".join(u.describe() for u in live.unreadable[:5])[:1000]
        notes.append(Note("Warning", "DriftCorrectionFailed", text, only_on_change=True))
        status.phase = Phase.DEGRADED
        unreadable = "; ".join(u.describe() for u in live.unreadable[:5])
        message = (
            f"{app} {version} is installed but some of its objects cannot be checked: {unreadable}.{note}"
        )
        return Summary(False, "ObjectsUnreadable", message), Next(after=60.0)
    if live is not None and live.unhealthy:
        status.phase = Phase.DEGRADED
        message = f"{app} {version} is installed but not healthy: {'; '.join(live.unhealthy[:5])}.{note}"
        return Summary(False, "WorkloadsNotReady", message), Next(after=60.0)
    status.phase = Phase.RUNNING
    return Summary(True, "Succeeded", f"{app} {version} is installed and ready.{note}"), RESYNC


def _is_scaling(d: Drift, state: ReleaseState) -> bool:
    holding = state.spec.stopped or not state.licensed or bool(state.status.stopped_replicas)
    return holding and d.fields == ("spec.replicas",)
