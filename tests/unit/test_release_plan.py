"""decide(): one action for every Helm release status, as Flux's atomic release would take."""

from __future__ import annotations

import pytest

from kubemart.domain.release_plan import PENDING, Action, Desired, Observed, decide

DESIRED = Desired(version="1.2.0", chart_digest="sha256:abc", applied_hash="want")
IN_SYNC = "want"
OUT_OF_SYNC = "old"


def observed(
    status: str | None,
    *,
    deployed: bool = False,
    applied: str | None = None,
    in_flight: bool = False,
) -> Observed:
    return Observed(
        release_status=status,
        has_deployed_revision=deployed,
        applied_hash=applied,
        operation_in_flight=in_flight,
    )


@pytest.mark.parametrize(
    ("obs", "action"),
    [
        # No release, or one that is gone: install.
        pytest.param(observed(None), Action.INSTALL, id="no release installs"),
        pytest.param(observed(None, applied=IN_SYNC), Action.INSTALL, id="no release despite applied hash"),
        pytest.param(observed("uninstalled"), Action.INSTALL, id="uninstalled installs"),
        pytest.param(
            observed("uninstalled", deployed=True, applied=IN_SYNC),
            Action.INSTALL,
            id="uninstalled with kept history installs",
        ),
        # Deployed.
        pytest.param(
            observed("deployed", deployed=True, applied=IN_SYNC), Action.NONE, id="deployed in sync"
        ),
        pytest.param(
            observed("deployed", deployed=True, applied=OUT_OF_SYNC),
            Action.UPGRADE,
            id="deployed out of sync",
        ),
        pytest.param(
            observed("deployed", deployed=True, applied=None),
            Action.UPGRADE,
            id="deployed never applied by us upgrades",
        ),
        pytest.param(
            observed("deployed", deployed=True, applied=IN_SYNC, in_flight=True),
            Action.NONE,
            id="deployed in sync with operation in flight",
        ),
        # Failed.
        pytest.param(
            observed("failed", deployed=True, applied=OUT_OF_SYNC),
            Action.UPGRADE,
            id="failed upgrade with a deployed revision upgrades",
        ),
        pytest.param(
            observed("failed", deployed=True, applied=IN_SYNC),
            Action.UPGRADE,
            id="failed with deployed revision upgrades even when hash matches",
        ),
        pytest.param(
            observed("failed", deployed=False),
            Action.UNLOCK_UNINSTALL,
            id="failed first install is uninstalled",
        ),
        pytest.param(
            observed("failed", deployed=False, applied=IN_SYNC),
            Action.UNLOCK_UNINSTALL,
            id="failed without deployed revision ignores hash",
        ),
        # Pending, left by a dead operation or one of ours still running.
        pytest.param(
            observed("pending-install", deployed=False),
            Action.UNLOCK_UNINSTALL,
            id="pending-install without deployed revision is uninstalled",
        ),
        pytest.param(
            observed("pending-install", deployed=True),
            Action.UNLOCK_ROLLBACK,
            id="pending-install with deployed revision rolls back",
        ),
        pytest.param(
            observed("pending-upgrade", deployed=True, applied=IN_SYNC),
            Action.UNLOCK_ROLLBACK,
            id="pending-upgrade with deployed revision rolls back",
        ),
        pytest.param(
            observed("pending-upgrade", deployed=False),
            Action.UNLOCK_UNINSTALL,
            id="pending-upgrade without deployed revision is uninstalled",
        ),
        pytest.param(
            observed("pending-rollback", deployed=True),
            Action.UNLOCK_ROLLBACK,
            id="pending-rollback with deployed revision rolls back",
        ),
        pytest.param(
            observed("pending-rollback", deployed=False),
            Action.UNLOCK_UNINSTALL,
            id="pending-rollback without deployed revision is uninstalled",
        ),
        pytest.param(
            observed("pending-install", deployed=False, in_flight=True),
            Action.NONE,
            id="pending-install with our operation in flight waits",
        ),
        pytest.param(
            observed("pending-upgrade", deployed=True, in_flight=True),
            Action.NONE,
            id="pending-upgrade with our operation in flight waits",
        ),
        pytest.param(
            observed("pending-rollback", deployed=True, applied=OUT_OF_SYNC, in_flight=True),
            Action.NONE,
            id="pending-rollback with our operation in flight waits",
        ),
        # Uninstalling, left by a dead uninstall.
        pytest.param(
            observed("uninstalling", deployed=True), Action.UNLOCK_UNINSTALL, id="uninstalling is finished"
        ),
        pytest.param(
            observed("uninstalling", deployed=False, applied=IN_SYNC),
            Action.UNLOCK_UNINSTALL,
            id="uninstalling without deployed revision is finished",
        ),
        # Superseded as the newest revision: Helm's record is odd, an upgrade makes a fresh one.
        pytest.param(
            observed("superseded", deployed=True, applied=IN_SYNC),
            Action.UPGRADE,
            id="superseded newest revision upgrades",
        ),
        pytest.param(
            observed("superseded", deployed=True, applied=OUT_OF_SYNC),
            Action.UPGRADE,
            id="superseded out of sync upgrades",
        ),
        pytest.param(observed("unknown", deployed=False), Action.UPGRADE, id="unknown status upgrades"),
    ],
)
def test_decide(obs: Observed, action: Action) -> None:
    assert decide(DESIRED, obs) is action


@pytest.mark.parametrize("status", PENDING)
@pytest.mark.parametrize(
    "deployed", [True, False], ids=["with deployed revision", "without deployed revision"]
)
def test_pending_in_flight_never_acts(status: str, deployed: bool) -> None:
    assert decide(DESIRED, observed(status, deployed=deployed, in_flight=True)) is Action.NONE


def test_pending_statuses_are_helms() -> None:
    assert set(PENDING) == {"pending-install", "pending-upgrade", "pending-rollback"}


@pytest.mark.parametrize(
    ("desired_hash", "applied", "action"),
    [
        pytest.param("a", "a", Action.NONE, id="same hash"),
        pytest.param("a", "b", Action.UPGRADE, id="other hash"),
        pytest.param("a", "A", Action.UPGRADE, id="hash compare is exact"),
    ],
)
def test_deployed_compares_applied_hash_only(desired_hash: str, applied: str, action: Action) -> None:
    desired = Desired(version="9.9.9", chart_digest="other", applied_hash=desired_hash)
    assert decide(desired, observed("deployed", deployed=True, applied=applied)) is action
