"""Small pure helpers: when a watch event needs a reconcile, Go-style durations, app entrances."""

from __future__ import annotations

from typing import Any

import pytest

from kubemart.domain.durations import parse_duration
from kubemart.domain.triggers import RECONCILE_ANNOTATION, needs_reconcile, requested_at

# --- triggers.needs_reconcile -----------------------------------------------------------------------


def body(
    *,
    generation: int | None = 2,
    observed: int | None = 2,
    requested: str | None = None,
    handled: str | None = None,
    deleting: bool = False,
    **meta: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "demo", "namespace": "apps", "resourceVersion": "100", **meta}
    if generation is not None:
        metadata["generation"] = generation
    if requested is not None:
        metadata.setdefault("annotations", {})[RECONCILE_ANNOTATION] = requested
    if deleting:
        metadata["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status: dict[str, Any] = {}
    if observed is not None:
        status["observedGeneration"] = observed
    if handled is not None:
        status["lastHandledReconcileAt"] = handled
    return {"metadata": metadata, "spec": {"app": "demo"}, "status": status}


@pytest.mark.parametrize(
    ("obj", "needs"),
    [
        pytest.param(body(), False, id="reconciled and nothing new"),
        pytest.param(body(generation=3, observed=2), True, id="spec changed: new generation"),
        pytest.param(body(generation=1, observed=None), True, id="never reconciled"),
        pytest.param({"metadata": {"name": "x", "generation": 1}}, True, id="no status at all"),
        pytest.param({"metadata": {"name": "x", "generation": 1}, "status": None}, True, id="null status"),
        pytest.param(
            body(generation=2, observed=3), True, id="observed generation ahead is still a mismatch"
        ),
        pytest.param(body(requested="2024-05-01T10:00:00Z"), True, id="reconcile requested, never handled"),
        pytest.param(
            body(requested="2024-05-01T10:00:00Z", handled="2024-05-01T09:00:00Z"),
            True,
            id="new reconcile request",
        ),
        pytest.param(
            body(requested="2024-05-01T10:00:00Z", handled="2024-05-01T10:00:00Z"),
            False,
            id="reconcile request already handled",
        ),
        pytest.param(body(requested="any value", handled="any value"), False, id="request is opaque text"),
        pytest.param(body(deleting=True), True, id="being deleted"),
        pytest.param(
            body(deleting=True, requested="a", handled="a"), True, id="being deleted while otherwise handled"
        ),
        pytest.param(
            body(annotations={"argocd.argoproj.io/tracking-id": "app:kubemart.io/AppInstall:apps/demo"}),
            False,
            id="metadata-only annotation change does not count",
        ),
        pytest.param(
            body(labels={"team": "x"}, resourceVersion="999", finalizers=["kubemart.io/release"]),
            False,
            id="labels, finalizers and resourceVersion do not count",
        ),
        pytest.param(body(annotations=None), False, id="null annotations"),
    ],
)
def test_needs_reconcile(obj: dict[str, Any], needs: bool) -> None:
    assert needs_reconcile(obj) is needs


def test_status_write_echo_does_not_need_reconcile() -> None:
    before = body(generation=5, observed=4)
    assert needs_reconcile(before)
    after = body(generation=5, observed=5, resourceVersion="101")
    after["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert not needs_reconcile(after)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(body(), None, id="no annotation"),
        pytest.param(body(requested="2024-05-01"), "2024-05-01", id="text"),
        pytest.param(
            {"metadata": {"annotations": {RECONCILE_ANNOTATION: 5}}}, "5", id="non-text read as text"
        ),
        pytest.param({}, None, id="no metadata"),
    ],
)
def test_requested_at(obj: dict[str, Any], expected: str | None) -> None:
    assert requested_at(obj) == expected


# --- durations.parse_duration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("30s", 30.0, id="seconds"),
        pytest.param("10m", 600.0, id="minutes"),
        pytest.param("2h", 7200.0, id="hours"),
        pytest.param("1h30m", 5400.0, id="hours and minutes"),
        pytest.param("1h30m15s", 5415.0, id="three units"),
        pytest.param("500ms", 0.5, id="milliseconds"),
        pytest.param("1m500ms", 60.5, id="minutes and milliseconds"),
        pytest.param("1.5h", 5400.0, id="fractional hours"),
        pytest.param("0.25s", 0.25, id="fractional seconds"),
        pytest.param("0s", 0.0, id="zero"),
        pytest.param("  5m  ", 300.0, id="surrounding spaces"),
        pytest.param("90s", 90.0, id="unnormalised seconds"),
        pytest.param("30s30s", 60.0, id="repeated unit adds up"),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("30", id="no unit"),
        pytest.param("s", id="unit only"),
        pytest.param("10x", id="unknown unit"),
        pytest.param("5d", id="days not supported"),
        pytest.param("-5s", id="negative"),
        pytest.param("1h 30m", id="space inside"),
        pytest.param("5s10", id="trailing number"),
        pytest.param("x5s", id="leading junk"),
        pytest.param("1.s", id="dot without decimals"),
        pytest.param(".5s", id="decimals without integer"),
        pytest.param("1.5.5s", id="two dots"),
        pytest.param("10M", id="uppercase unit"),
        pytest.param("1e3s", id="exponent"),
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration like 30s, 10m or 1h30m") as err:
        parse_duration(text)
    assert repr(text.strip()) in str(err.value), "the message names the bad input"
