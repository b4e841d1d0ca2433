"""Install or upgrade: one `helm upgrade --install --wait` of the desired chart and values."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from kubemart.adapters.helm import Helm, HelmError, Slot, manifest_objects
from kubemart.adapters.helm_errors import with_injected_values_hint
from kubemart.domain.entrances import entrances_from
from kubemart.domain.tenancy import forbidden_message
from kubemart.models.appinstall import LastFailure, OwnedRelease
from kubemart.release.decide import spent
from kubemart.release.outcome import Failure, Note, Outcome, entry
from kubemart.release.ownership import owner_labels
from kubemart.release.state import Action, Decision, ReleaseState
from kubemart.runtime import metrics
from kubemart.sources.archive import olares_manifest


async def apply(helm: Helm, state: ReleaseState, decision: Decision, *, slot: Slot) -> Outcome:
    desired, chart = state.desired, state.chart
    assert desired is not None
    assert chart is not None
    install = decision.action is Action.INSTALL
    op = "install" if install else "upgrade"
    version = desired.version.version
    started = datetime.now(UTC)
    attempted = {
        "last_attempted_generation": state.generation,
        "last_attempted_hash": desired.applied_hash,
        "operation": None,
        # Made by this operation: the next observe proves it by the revision's Secret uid.
        "owned_release": OwnedRelease(),
    }
    try:
        record = await helm.upgrade_install(
            release=state.release_name,
            namespace=state.target_namespace,
            chart=chart,
            values=desired.values,
            timeout_seconds=state.timeout_seconds,
            install=install,
            description=f"kubemart: {op} {state.spec.app} {version}",
            acting_as=state.account,
            labels=owner_labels(state.namespace, state.name),
            slot=slot,
        )
    except HelmError as failed:
        err = failed
        if (
            failed.reason == "ChartRenderFailed"
            and await asyncio.to_thread(olares_manifest, chart) is not None
        ):
            err = with_injected_values_hint(failed)  # an Olares app: say which injected value is missing
        finished = datetime.now(UTC)
        metrics.OPERATIONS.labels(op, "Failed").inc()
        metrics.OPERATION_SECONDS.labels(op).observe((finished - started).total_seconds())
        message = forbidden_message(err.message, state.account) if err.reason == "Forbidden" else err.message
        used = spent(state)
        retries = (
            state.spec.install.remediation.retries if install else state.spec.upgrade.remediation.retries
        )
        failures = (used.install_failures if install else used.upgrade_failures) + 1
        if not err.retryable:
            failures = max(failures, retries + 1)  # retrying cannot help: spend the budget now
        counters = (
            {"install_failures": failures, "upgrade_failures": used.upgrade_failures or None}
            if install
            else {"install_failures": used.install_failures or None, "upgrade_failures": failures}
        )
        return Outcome(
            updates=attempted
            | counters
            | {
                "last_failure": LastFailure(
                    operation=op,
                    reason=err.reason,
                    message=message[:2048],
                    retryable=err.retryable,
                    time=finished,
                )
            },
            history=(
                entry(
                    op,
                    "Failed",
                    started=started,
                    finished=finished,
                    from_version=state.status.installed_version,
                    to_version=version,
                    message=message,
                ),
            ),
            notes=(Note("Warning", err.reason, message),),
            failure=Failure(err.reason, message, err.retryable),
        )
    finished = datetime.now(UTC)
    metrics.OPERATIONS.labels(op, "Succeeded").inc()
    metrics.OPERATION_SECONDS.labels(op).observe((finished - started).total_seconds())
    verb = "Installed" if install else "Upgraded"
    message = f"{verb} {state.spec.app} {version} as release {state.release_name} revision {record.revision}."
    return Outcome(
        updates=attempted
        | {
            "owned_release": OwnedRelease(revision=record.revision),
            "installed_version": version,
            "chart_digest": desired.chart_digest,
            "release_revision": record.revision,
            "applied_hash": desired.applied_hash,
            "entrances": entrances_from(
                await asyncio.to_thread(manifest_objects, record.manifest),
                state.target_namespace,
                olares=await asyncio.to_thread(olares_manifest, chart),
            ),
            "install_failures": None,
            "upgrade_failures": None,
            "last_failure": None,
        },
        history=(
            entry(
                op,
                "Succeeded",
                started=started,
                finished=finished,
                from_version=state.status.installed_version,
                to_version=version,
                revision=record.revision,
                message=message,
            ),
        ),
        notes=(Note("Normal", verb, message),),
    )
