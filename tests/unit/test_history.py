"""status.history keeps the newest operations, as many as the setting allows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubemart.models.appinstall import AppInstallStatus
from kubemart.runtime.settings import Settings
from kubemart.services.appinstall import AppInstalls


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_history_is_capped_newest_first(limit: int) -> None:
    installs = AppInstalls(kube=None, helm=None, settings=Settings(history_limit=limit), events=None)  # type: ignore[arg-type]
    status = AppInstallStatus()
    for i in range(limit + 4):
        installs._record(
            status, "upgrade", f"1.{i}.0", f"1.{i + 1}.0", i + 1, "Succeeded", datetime.now(UTC), f"op {i}"
        )
    assert len(status.history) == limit
    assert [h.revision for h in status.history] == list(range(limit + 4, 4, -1))
