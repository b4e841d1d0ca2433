"""The kstatus trio: Ready, Reconciling and Stalled, summarised from one outcome.

kstatus (and so Argo CD, Flux and `kubectl wait`) reads: Reconciling=True means work in
progress, Stalled=True means a person must act, Ready=True means done. Reconciling and
Stalled are "abnormal-true" conditions: present only while true, as Flux does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kubemart.models.resource import Condition, ConditionStatus

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class Summary:
    """One outcome of a reconcile, as a person would read it."""

    ready: bool | None
    """True: done and healthy; False: not (see reason); None: not known yet."""
    reason: str
    message: str
    reconciling: bool = False
    stalled: bool = False
    stalled_reason: str | None = None
    """Why retrying cannot help, when that differs from `reason` (e.g. RetriesExhausted)."""
    stalled_message: str | None = None


def _status(value: bool | None) -> ConditionStatus:
    if value is None:
        return ConditionStatus.UNKNOWN
    return ConditionStatus.TRUE if value else ConditionStatus.FALSE


def _carry(previous: Sequence[Condition], new: Condition) -> Condition:
    """Keep lastTransitionTime when the status did not change."""
    for old in previous:
        if old.type == new.type and old.status == new.status:
            return new.model_copy(update={"last_transition_time": old.last_transition_time})
    return new


def conditions_for(
    summary: Summary, *, generation: int | None, previous: Sequence[Condition], now: datetime
) -> list[Condition]:
    """Pure: the conditions that say `summary`, keeping transition times of unchanged ones."""

    def condition(type_: str, status: ConditionStatus, reason: str, message: str) -> Condition:
        new = Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=now,
            observed_generation=generation,
        )
        return _carry(previous, new)

    out = [condition(READY, _status(summary.ready), summary.reason, summary.message)]
    if summary.reconciling:
        out.append(condition(RECONCILING, ConditionStatus.TRUE, summary.reason, summary.message))
    if summary.stalled:
        out.append(
            condition(
                STALLED,
                ConditionStatus.TRUE,
                summary.stalled_reason or summary.reason,
                summary.stalled_message or summary.message,
            )
        )
    # Conditions of other types (none yet) are left to whoever set them.
    others = [c for c in previous if c.type not in (READY, RECONCILING, STALLED)]
    return out + others


def same_conditions(a: Sequence[Condition], b: Sequence[Condition]) -> bool:
    """Equal but for timestamps: used to skip a status write that would change nothing."""

    def strip(cs: Sequence[Condition]) -> list[tuple[str, str, str, str, int | None]]:
        return sorted((c.type, c.status.value, c.reason, c.message, c.observed_generation) for c in cs)

    return strip(a) == strip(b)


def ready_of(conditions: Sequence[Condition]) -> Condition | None:
    return next((c for c in conditions if c.type == READY), None)
