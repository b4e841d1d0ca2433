"""Correct the live objects: re-apply what drifted, scale for a stop, its undoing or a revoked licence."""

from __future__ import annotations

from kubemart.models.appinstall import DriftMode
from kubemart.release.live import LiveObjects
from kubemart.release.outcome import Note, Outcome
from kubemart.release.state import ReleaseState
from kubemart.runtime import metrics


async def correct(live: LiveObjects, state: ReleaseState) -> Outcome:
    assert state.live is not None
    holding = state.spec.stopped or not state.licensed
    restore = None if holding else (state.status.stopped_replicas or None)
    mode = state.spec.drift_detection.mode if state.licensed else DriftMode.ENABLED
    done = await live.correct(state.live, mode=mode, stopped=holding, acting_as=state.account)
    notes: list[Note] = []
    drifted = [d for d in done.corrected if not (d.fields == ("spec.replicas",) and (holding or restore))]
    if drifted:
        metrics.CORRECTIONS.inc(len(drifted))
        text = "; ".join(d.describe() for d in drifted)
        notes.append(Note("Warning", "DriftCorrected", f"Corrected drift: {text[:900]}."))
    if done.failed:
        notes.append(Note("Warning", "DriftCorrectionFailed", "; ".join(done.failed)[:1000]))
    return Outcome(corrected=done.corrected, correction_failures=done.failed, notes=tuple(notes))
