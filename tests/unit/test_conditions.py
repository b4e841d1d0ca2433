"""The kstatus trio: Ready always, Reconciling and Stalled only while true, transition times kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubemart.domain.conditions import (
    READY,
    RECONCILING,
    STALLED,
    Summary,
    conditions_for,
    ready_of,
    same_conditions,
)
from kubemart.models.resource import Condition, ConditionStatus

EARLIER = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
NOW = EARLIER + timedelta(hours=1)
T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def cond(
    type_: str,
    status: ConditionStatus,
    reason: str = "Old",
    message: str = "old message",
    at: datetime = EARLIER,
    generation: int | None = 1,
) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=at,
        observed_generation=generation,
    )


def by_type(conditions: list[Condition]) -> dict[str, Condition]:
    return {c.type: c for c in conditions}


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        pytest.param(Summary(True, "Succeeded", "done."), {READY: T}, id="ready true"),
        pytest.param(Summary(False, "InstallFailed", "broken."), {READY: F}, id="ready false"),
        pytest.param(Summary(None, "Progressing", "working."), {READY: U}, id="ready unknown"),
        pytest.param(
            Summary(None, "Installing", "installing.", reconciling=True),
            {READY: U, RECONCILING: T},
            id="reconciling present when true",
        ),
        pytest.param(
            Summary(False, "InvalidSpec", "fix it.", stalled=True),
            {READY: F, STALLED: T},
            id="stalled present when true",
        ),
        pytest.param(
            Summary(False, "Both", "odd.", reconciling=True, stalled=True),
            {READY: F, RECONCILING: T, STALLED: T},
            id="reconciling and stalled together",
        ),
    ],
)
def test_conditions_for_statuses(summary: Summary, expected: dict[str, ConditionStatus]) -> None:
    out = conditions_for(summary, generation=3, previous=[], now=NOW)
    assert {c.type: c.status for c in out} == expected
    assert out[0].type == READY, "Ready comes first"
    for c in out:
        assert c.reason == summary.reason
        assert c.message == summary.message
        assert c.observed_generation == 3
        assert c.last_transition_time == NOW


@pytest.mark.parametrize(
    ("summary", "reason", "message"),
    [
        pytest.param(
            Summary(False, "UpgradeFailed", "helm failed.", stalled=True),
            "UpgradeFailed",
            "helm failed.",
            id="stalled uses ready reason and message by default",
        ),
        pytest.param(
            Summary(
                False,
                "UpgradeFailed",
                "helm failed.",
                stalled=True,
                stalled_reason="RetriesExhausted",
                stalled_message="gave up after 3 tries.",
            ),
            "RetriesExhausted",
            "gave up after 3 tries.",
            id="stalled reason and message override",
        ),
        pytest.param(
            Summary(False, "UpgradeFailed", "helm failed.", stalled=True, stalled_reason="RetriesExhausted"),
            "RetriesExhausted",
            "helm failed.",
            id="only stalled reason overridden",
        ),
        pytest.param(
            Summary(False, "UpgradeFailed", "helm failed.", stalled=True, stalled_message="look at it."),
            "UpgradeFailed",
            "look at it.",
            id="only stalled message overridden",
        ),
    ],
)
def test_stalled_reason_and_message(summary: Summary, reason: str, message: str) -> None:
    out = by_type(conditions_for(summary, generation=1, previous=[], now=NOW))
    assert (out[STALLED].reason, out[STALLED].message) == (reason, message)
    assert (out[READY].reason, out[READY].message) == (summary.reason, summary.message)


@pytest.mark.parametrize(
    ("previous", "summary", "expected_times"),
    [
        pytest.param(
            [cond(READY, T)],
            Summary(True, "Succeeded", "new message."),
            {READY: EARLIER},
            id="ready unchanged keeps time despite new reason and message",
        ),
        pytest.param(
            [cond(READY, F)],
            Summary(True, "Succeeded", "done."),
            {READY: NOW},
            id="ready false to true moves time",
        ),
        pytest.param(
            [cond(READY, T)],
            Summary(None, "Progressing", "upgrading."),
            {READY: NOW},
            id="ready true to unknown moves time",
        ),
        pytest.param(
            [cond(READY, U), cond(RECONCILING, T)],
            Summary(None, "Installing", "still.", reconciling=True),
            {READY: EARLIER, RECONCILING: EARLIER},
            id="still reconciling keeps both times",
        ),
        pytest.param(
            [cond(READY, U)],
            Summary(None, "Installing", "started.", reconciling=True),
            {READY: EARLIER, RECONCILING: NOW},
            id="reconciling appears with new time",
        ),
        pytest.param(
            [cond(READY, F), cond(STALLED, T)],
            Summary(False, "Other", "still stuck.", stalled=True),
            {READY: EARLIER, STALLED: EARLIER},
            id="still stalled keeps time",
        ),
        pytest.param(
            [cond(READY, U), cond(RECONCILING, T)],
            Summary(True, "Succeeded", "done."),
            {READY: NOW},
            id="reconciling disappears when done",
        ),
        pytest.param(
            [cond(READY, F), cond(STALLED, T)],
            Summary(None, "Retrying", "again.", reconciling=True),
            {READY: NOW, RECONCILING: NOW},
            id="stalled disappears on retry",
        ),
        pytest.param(
            [cond(READY, F, generation=1)],
            Summary(False, "InstallFailed", "broken."),
            {READY: EARLIER},
            id="new generation alone keeps time",
        ),
    ],
)
def test_last_transition_time(
    previous: list[Condition], summary: Summary, expected_times: dict[str, datetime]
) -> None:
    out = conditions_for(summary, generation=2, previous=previous, now=NOW)
    assert {c.type: c.last_transition_time for c in out} == expected_times
    for c in out:
        # Everything but the time is the new outcome's.
        assert c.observed_generation == 2
        assert c.message != "old message"


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(cond("Paid", T, reason="PaymentVerified", message="paid."), id="custom true"),
        pytest.param(cond("Healthy", F, reason="PodsCrashing", message="crash."), id="custom false"),
    ],
)
def test_other_condition_types_are_preserved(other: Condition) -> None:
    previous = [cond(READY, F), cond(STALLED, T), other]
    out = conditions_for(Summary(True, "Succeeded", "done."), generation=2, previous=previous, now=NOW)
    assert [c.type for c in out] == [READY, other.type]
    assert out[-1] == other


def test_conditions_for_rejects_a_reason_that_is_not_camel_case() -> None:
    with pytest.raises(ValueError, match="reason"):
        conditions_for(Summary(False, "not a reason", "x."), generation=1, previous=[], now=NOW)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param([], [], True, id="both empty"),
        pytest.param([cond(READY, T)], [cond(READY, T, at=NOW)], True, id="only timestamp differs"),
        pytest.param(
            [cond(READY, T), cond(RECONCILING, T)],
            [cond(RECONCILING, T, at=NOW), cond(READY, T)],
            True,
            id="order ignored",
        ),
        pytest.param([cond(READY, T)], [cond(READY, F)], False, id="status differs"),
        pytest.param([cond(READY, T)], [cond(READY, T, reason="New")], False, id="reason differs"),
        pytest.param([cond(READY, T)], [cond(READY, T, message="new")], False, id="message differs"),
        pytest.param([cond(READY, T)], [cond(READY, T, generation=2)], False, id="generation differs"),
        pytest.param([cond(READY, T)], [cond(READY, T), cond(STALLED, T)], False, id="extra condition"),
        pytest.param([cond(READY, T)], [], False, id="one empty"),
    ],
)
def test_same_conditions(a: list[Condition], b: list[Condition], same: bool) -> None:
    assert same_conditions(a, b) is same
    assert same_conditions(b, a) is same


def test_rewriting_the_same_summary_is_the_same_conditions() -> None:
    summary = Summary(False, "InstallFailed", "broken.", stalled=True)
    first = conditions_for(summary, generation=4, previous=[], now=EARLIER)
    second = conditions_for(summary, generation=4, previous=first, now=NOW)
    assert same_conditions(first, second)
    assert second == first, "an unchanged outcome keeps every field, times included"


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param([], None, id="none"),
        pytest.param([cond(STALLED, T)], None, id="no ready"),
        pytest.param([cond(STALLED, T), cond(READY, F)], cond(READY, F), id="found among others"),
    ],
)
def test_ready_of(conditions: list[Condition], expected: Condition | None) -> None:
    assert ready_of(conditions) == expected


def test_status_merge_patch_clears_nested_fields() -> None:
    from kubemart.services.status import merge_patch

    before = {"ownedRelease": {"revision": 1, "secretUid": "x"}, "phase": "Running", "history": [1, 2]}
    after = {"ownedRelease": {}, "history": [3]}
    assert merge_patch(before, after) == {
        "ownedRelease": {"revision": None, "secretUid": None},
        "phase": None,
        "history": [3],
    }
