"""status.history keeps the newest operations, as many as the setting allows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubemart.release.outcome import Outcome, entry
from kubemart.release.state import Action, Decision
from kubemart.release.summarize import summarize
from support.release_states import IN_SYNC, release, state


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_history_is_capped_newest_first(limit: int) -> None:
    now = datetime.now(UTC)
    old = [
        entry("upgrade", "Succeeded", started=now, finished=now, revision=i, message=f"op {i}").model_dump(
            by_alias=True, mode="json"
        )
        for i in range(limit + 3, 0, -1)
    ]
    given = state(rel=release(), status={**IN_SYNC, "history": old})
    new = entry("upgrade", "Succeeded", started=now, finished=now, revision=limit + 4, message="newest")
    report = summarize(given, Decision(Action.UPGRADE), Outcome(history=(new,)), now=now, history_limit=limit)
    assert len(report.status.history) == limit
    assert [h.revision for h in report.status.history] == list(range(limit + 4, 4, -1))
