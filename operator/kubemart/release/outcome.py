"""What an action did, as data: the status it changes and the Events it is worth (no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from kubemart.domain.drift import Drift
from kubemart.models.appinstall import HistoryEntry


@dataclass(frozen=True)
class Note:
    """A Kubernetes Event to post on the AppInstall."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    only_on_change: bool = False
    """Post only when the conditions changed: a problem reported again is not news."""


@dataclass(frozen=True)
class Failure:
    """Why an action failed: a stable CamelCase reason, a message saying what to do."""

    reason: str
    message: str
    retryable: bool = True


@dataclass(frozen=True)
class Outcome:
    """The result of one action, for `summarize` to turn into status."""

    updates: Mapping[str, Any] = field(default_factory=dict)
    """AppInstallStatus fields (snake_case) to set."""
    history: tuple[HistoryEntry, ...] = ()
    """Entries to add, oldest first."""
    notes: tuple[Note, ...] = ()
    failure: Failure | None = None
    corrected: tuple[Drift, ...] = ()
    correction_failures: tuple[str, ...] = ()


def entry(
    operation: str,
    result: str,
    *,
    started: datetime,
    finished: datetime,
    message: str,
    from_version: str | None = None,
    to_version: str | None = None,
    revision: int | None = None,
) -> HistoryEntry:
    return HistoryEntry(
        operation=operation,
        from_version=from_version,
        to_version=to_version,
        revision=revision,
        result=result,
        started_at=started,
        finished_at=finished,
        message=message[:2048],
    )
