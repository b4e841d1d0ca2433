"""decide(): one named case per situation of an AppInstall, as Flux's state_test.go has for a HelmRelease."""

from __future__ import annotations

import pytest

from kubemart.domain.capacity import INSUFFICIENT, KUBE_VERSION, Capacity, FitInputs, NodeFree, Resources
from kubemart.models.marketapp import Requirements
from kubemart.release.decide import decide
from kubemart.release.dependencies import Waiting
from kubemart.release.finalize import Deletion, decide_deletion
from kubemart.release.state import Action, Live, Ownership, Release, ReleaseState
from support.release_states import CHANGED, IN_SYNC, NOW, SCALE, blocker, desired, release, state

FOREIGN = Ownership.FOREIGN
ATTEMPTED = {"lastAttemptedGeneration": 1, "lastAttemptedHash": "sha256:want"}
NO_RETRIES_LEFT_INSTALL = {**ATTEMPTED, "installFailures": 1}
NO_RETRIES_LEFT_UPGRADE = {**ATTEMPTED, "upgradeFailures": 1, **IN_SYNC, "appliedHash": "sha256:old"}

ROOM = Capacity((NodeFree("n1", "amd64", Resources(cpu=4000, memory=8 << 30), False),))
TOO_BIG = FitInputs(requirements=Requirements(cpu="16"), capacity=ROOM)
FITS = FitInputs(requirements=Requirements(cpu="2", architectures=["amd64"]), capacity=ROOM)
WRONG_ARCH = FitInputs(requirements=Requirements(architectures=["arm64"]), capacity=ROOM)
OLD_CLUSTER = FitInputs(kube_version=">=1.40.0-0", cluster_version="v1.36.3", capacity=ROOM)
GREW = FitInputs(requirements=Requirements(cpu="16"), installed_with=Requirements(cpu="1"), capacity=ROOM)
SAME = FitInputs(requirements=Requirements(cpu="16"), installed_with=Requirements(cpu="16"), capacity=ROOM)
OUT_OF_SYNC = {"appliedHash": "sha256:old", "releaseRevision": 1}

CASES = [
    # Suspension, claims and ownership come before anything else.
    pytest.param(state(suspended=True), Action.SUSPENDED, id="suspended"),
    pytest.param(state(suspended=True, blocker=blocker()), Action.SUSPENDED, id="suspended with a blocker"),
    pytest.param(
        state(holder="ns/older"), Action.RELEASE_CONFLICT, id="an older AppInstall holds the release"
    ),
    pytest.param(
        state(rel=release(ownership=FOREIGN)),
        Action.RELEASE_NOT_OWNED,
        id="release installed by someone else",
    ),
    pytest.param(
        state(rel=release("failed", ownership=FOREIGN)),
        Action.RELEASE_NOT_OWNED,
        id="failed foreign release not touched",
    ),
    pytest.param(
        state(rel=release("pending-install", ownership=FOREIGN, deployed=False)),
        Action.RELEASE_NOT_OWNED,
        id="pending foreign release not unlocked",
    ),
    pytest.param(
        state(rel=release(ownership=FOREIGN), blocker=blocker()),
        Action.RELEASE_NOT_OWNED,
        id="foreign release reported before a missing input",
    ),
    pytest.param(
        state(rel=release(ownership=FOREIGN), adoption_allowed=True),
        Action.UPGRADE,
        id="foreign release adopted when asked and allowed",
    ),
    # Inputs that are missing or wrong.
    pytest.param(state(blocker=blocker()), Action.BLOCKED, id="missing input"),
    pytest.param(
        state(rel=release(), status=IN_SYNC, blocker=blocker()),
        Action.BLOCKED,
        id="missing input, app installed",
    ),
    pytest.param(state(licensed=False), Action.BLOCKED, id="paid app without licence, not installed"),
    pytest.param(
        state(rel=release(), status=IN_SYNC, licensed=False, live=Live(drift=(SCALE,))),
        Action.REVOKE,
        id="licence revoked: stop the workloads",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, licensed=False, live=Live()),
        Action.STEADY,
        id="licence revoked, workloads already stopped",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, licensed=False, live_error="boom"),
        Action.LIVE_UNREADABLE,
        id="licence revoked, objects unreadable",
    ),
    # No release yet.
    pytest.param(state(), Action.INSTALL, id="no release installs"),
    pytest.param(state(chart=False), Action.FETCH_CHART, id="no release, chart not cached yet"),
    pytest.param(state(rel=Release(status="uninstalled")), Action.INSTALL, id="uninstalled release installs"),
    pytest.param(
        state(status=NO_RETRIES_LEFT_INSTALL),
        Action.RETRIES_EXHAUSTED,
        id="no release, install retries spent",
    ),
    pytest.param(
        state(status=NO_RETRIES_LEFT_INSTALL, generation=2),
        Action.INSTALL,
        id="failures of an older generation do not count",
    ),
    pytest.param(
        state(status=NO_RETRIES_LEFT_INSTALL, want=desired("sha256:new-values")),
        Action.INSTALL,
        id="failures of other values do not count",
    ),
    pytest.param(
        state(status=NO_RETRIES_LEFT_INSTALL, retry_requested=True),
        Action.INSTALL,
        id="retry request starts again",
    ),
    pytest.param(
        state(status={**ATTEMPTED, "installFailures": 2}, spec={"install": {"remediation": {"retries": 2}}}),
        Action.INSTALL,
        id="install failures within the retries allowed",
    ),
    pytest.param(
        state(status={**ATTEMPTED, "upgradeFailures": 1}),
        Action.RETRIES_EXHAUSTED,
        id="no release after an uninstall remediation, upgrade retries spent",
    ),
    # Pending: a dead operation, or a person's helm still running.
    pytest.param(
        state(rel=release("pending-install", deployed=False, modified_ago=2)),
        Action.WAIT_PENDING,
        id="pending-install just now",
    ),
    pytest.param(
        state(rel=release("pending-upgrade", revision=2, modified_ago=2)),
        Action.WAIT_PENDING,
        id="pending-upgrade just now",
    ),
    pytest.param(
        state(rel=release("pending-install", deployed=False)),
        Action.UNLOCK_UNINSTALL,
        id="abandoned pending-install",
    ),
    pytest.param(
        state(rel=release("pending-upgrade", revision=2)),
        Action.UNLOCK_ROLLBACK,
        id="abandoned pending-upgrade",
    ),
    pytest.param(
        state(rel=release("pending-rollback", revision=3)),
        Action.UNLOCK_ROLLBACK,
        id="abandoned pending-rollback",
    ),
    pytest.param(state(rel=release("uninstalling")), Action.UNLOCK_UNINSTALL, id="left uninstalling"),
    # Failed.
    pytest.param(
        state(rel=release("failed", deployed=False)), Action.UNLOCK_UNINSTALL, id="failed first install"
    ),
    pytest.param(
        state(rel=release("failed", deployed=False), status=NO_RETRIES_LEFT_INSTALL),
        Action.RETRIES_EXHAUSTED,
        id="failed first install, retries spent",
    ),
    pytest.param(
        state(rel=release("failed", revision=2)), Action.REMEDIATE, id="failed upgrade with a good revision"
    ),
    pytest.param(
        state(rel=release("failed", revision=2), status=NO_RETRIES_LEFT_UPGRADE),
        Action.REMEDIATE,
        id="failed upgrade remediated even with no retries left",
    ),
    # Deployed and in sync: the live objects.
    pytest.param(state(rel=release(), status=IN_SYNC), Action.STEADY, id="deployed in sync"),
    pytest.param(
        state(rel=release(), status=IN_SYNC, live=Live(unhealthy=("Deployment web has 0/1",))),
        Action.STEADY,
        id="unhealthy workloads are reported, not acted on",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, live=Live(drift=(CHANGED,))),
        Action.CORRECT,
        id="drift corrected",
    ),
    pytest.param(
        state(
            rel=release(),
            status=IN_SYNC,
            live=Live(drift=(CHANGED,)),
            spec={"driftDetection": {"mode": "warn"}},
        ),
        Action.STEADY,
        id="drift in warn mode is reported",
    ),
    pytest.param(
        state(
            rel=release(),
            status=IN_SYNC,
            live=Live(drift=(CHANGED,)),
            spec={"driftDetection": {"mode": "disabled"}},
        ),
        Action.STEADY,
        id="drift with detection disabled",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, live=Live(drift=(SCALE,)), spec={"stopped": True}),
        Action.CORRECT,
        id="stop scales to zero",
    ),
    pytest.param(
        state(
            rel=release(),
            status=IN_SYNC,
            live=Live(drift=(SCALE,)),
            spec={"stopped": True, "driftDetection": {"mode": "warn"}},
        ),
        Action.CORRECT,
        id="stop holds in warn mode",
    ),
    pytest.param(
        state(
            rel=release(),
            status={**IN_SYNC, "stoppedReplicas": {"Deployment/web": 2}},
            live=Live(drift=(SCALE,)),
        ),
        Action.CORRECT,
        id="resume restores the replicas",
    ),
    pytest.param(
        state(
            rel=release(),
            status={**IN_SYNC, "stoppedReplicas": {"Deployment/web": 2}},
            live=Live(drift=(SCALE,)),
            spec={"driftDetection": {"mode": "disabled"}},
        ),
        Action.CORRECT,
        id="resume restores the replicas with detection disabled",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, live=Live(drift=(SCALE,))),
        Action.CORRECT,
        id="replicas changed by hand are drift",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, live_error="timeout"),
        Action.LIVE_UNREADABLE,
        id="objects unreadable",
    ),
    # Deployed, out of sync.
    pytest.param(
        state(rel=release(), status={"appliedHash": "sha256:old"}), Action.UPGRADE, id="new values upgrade"
    ),
    pytest.param(
        state(rel=release(), status={"appliedHash": "sha256:old"}, chart=False),
        Action.FETCH_CHART,
        id="new version, chart not cached yet",
    ),
    pytest.param(
        state(rel=release(), status={}), Action.UPGRADE, id="deployed, never applied by this AppInstall"
    ),
    pytest.param(
        state(rel=release(revision=2), status=IN_SYNC),
        Action.UPGRADE,
        id="someone else's helm upgrade is undone",
    ),
    pytest.param(
        state(rel=release(revision=7), status={"appliedHash": "sha256:want"}),
        Action.STEADY,
        id="release recorded before revisions were kept",
    ),
    pytest.param(
        state(rel=release(), status=NO_RETRIES_LEFT_UPGRADE),
        Action.RETRIES_EXHAUSTED,
        id="upgrade retries spent",
    ),
    pytest.param(
        state(rel=release(), status=NO_RETRIES_LEFT_UPGRADE, retry_requested=True),
        Action.UPGRADE,
        id="upgrade retries spent, retry requested",
    ),
    pytest.param(
        state(rel=release("superseded"), status=IN_SYNC),
        Action.STEADY,
        id="superseded current revision in sync",
    ),
    pytest.param(
        state(rel=release("unknown"), status={}), Action.UPGRADE, id="unknown release status upgrades"
    ),
    # Requirements (docs/requirements.md): checked before an install or an upgrade, never on a running app.
    pytest.param(state(fit=FITS), Action.INSTALL, id="requirements fit: install"),
    pytest.param(state(fit=TOO_BIG), Action.BLOCKED, id="bigger than any node: no install"),
    pytest.param(state(fit=TOO_BIG, chart=False), Action.BLOCKED, id="bigger than any node: no download"),
    pytest.param(state(fit=WRONG_ARCH), Action.BLOCKED, id="no node of the architecture: no install"),
    pytest.param(state(fit=OLD_CLUSTER), Action.BLOCKED, id="kubeVersion excludes the cluster: no install"),
    pytest.param(
        state(fit=OLD_CLUSTER, chart=False), Action.BLOCKED, id="kubeVersion from the index: no download"
    ),
    pytest.param(
        state(fit=FitInputs(requirements=Requirements(cpu="16"))),
        Action.INSTALL,
        id="capacity unknown: install",
    ),
    pytest.param(
        state(fit=TOO_BIG, status=NO_RETRIES_LEFT_INSTALL),
        Action.RETRIES_EXHAUSTED,
        id="retries spent is said before the fit",
    ),
    pytest.param(
        state(rel=release(), status=OUT_OF_SYNC, fit=GREW),
        Action.BLOCKED,
        id="upgrade asking more than any node has",
    ),
    pytest.param(
        state(rel=release(), status=OUT_OF_SYNC, fit=SAME),
        Action.UPGRADE,
        id="upgrade with unchanged requirements",
    ),
    pytest.param(
        state(rel=release(), status=OUT_OF_SYNC, fit=TOO_BIG),
        Action.UPGRADE,
        id="upgrade of an app installed before the check",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, fit=GREW), Action.STEADY, id="running app is never blocked"
    ),
    pytest.param(
        state(rel=release(), status={**OUT_OF_SYNC, "installedVersion": "1.2.0"}, fit=GREW),
        Action.UPGRADE,
        id="new values for the installed version are not checked",
    ),
    pytest.param(
        state(rel=release("failed"), status=IN_SYNC, fit=GREW),
        Action.REMEDIATE,
        id="remediation is never blocked",
    ),
]


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_decide(given: ReleaseState, expected: Action) -> None:
    assert decide(given, now=NOW).action is expected


@pytest.mark.parametrize(
    ("given", "reason", "stalled", "phase"),
    [
        (state(fit=TOO_BIG), INSUFFICIENT, False, "Pending"),
        (state(fit=WRONG_ARCH), INSUFFICIENT, False, "Pending"),
        (state(fit=OLD_CLUSTER), KUBE_VERSION, True, "Failed"),
        (
            state(rel=release(), status={**OUT_OF_SYNC, "phase": "Running"}, fit=GREW),
            INSUFFICIENT,
            False,
            "Running",
        ),
    ],
)
def test_what_does_not_fit_says_why(given: ReleaseState, reason: str, stalled: bool, phase: str) -> None:
    decision = decide(given, now=NOW)
    assert decision.blocker is not None
    assert (decision.blocker.reason, decision.blocker.stalled, decision.blocker.phase.value) == (
        reason,
        stalled,
        phase,
    )


def test_pending_waits_out_the_grace() -> None:
    decision = decide(state(rel=release("pending-install", deployed=False, modified_ago=4)), now=NOW)
    assert decision.action is Action.WAIT_PENDING
    assert decision.wait == pytest.approx(6.5)


def test_decide_reads_nothing_but_its_arguments() -> None:
    given = state(rel=release(), status=IN_SYNC)
    assert decide(given, now=NOW) == decide(given, now=NOW)


DELETIONS = [
    pytest.param(
        {"refused": False, "holder": None, "release": release()}, Deletion.UNINSTALL, id="own release"
    ),
    pytest.param(
        {"refused": False, "holder": None, "release": Release()}, Deletion.RELEASE, id="nothing installed"
    ),
    pytest.param(
        {"refused": False, "holder": None, "release": release(ownership=FOREIGN)},
        Deletion.LEAVE_FOREIGN,
        id="someone else's release is left",
    ),
    pytest.param(
        {"refused": False, "holder": "ns/older", "release": release(ownership=FOREIGN)},
        Deletion.RELEASE,
        id="loser of a release conflict",
    ),
    pytest.param(
        {"refused": True, "holder": None, "release": release()},
        Deletion.LEAVE_REFUSED,
        id="refused namespace",
    ),
    pytest.param(
        {"refused": True, "holder": None, "release": Release()},
        Deletion.RELEASE,
        id="refused namespace, nothing there",
    ),
    pytest.param(
        {"refused": False, "holder": None, "release": Release(status="uninstalled")},
        Deletion.RELEASE,
        id="already uninstalled",
    ),
]


@pytest.mark.parametrize(("given", "expected"), DELETIONS)
def test_decide_deletion(given: dict[str, object], expected: Deletion) -> None:
    assert decide_deletion(**given) is expected  # type: ignore[arg-type]


# Dependencies (release/dependencies.py): installs and upgrades wait; a cycle stops everything.
NOT_READY = Waiting("DependencyNotReady", "Waiting for AppInstall ns/db (spec.dependsOn): it does not exist.")
MISSING = Waiting("DependencyMissing", "The catalog says this app needs postgresql >=15 ...")
CYCLE = Waiting("DependencyCycle", "spec.dependsOn makes a cycle: ns/a -> ns/b -> ns/a", stalled=True)
OUT_OF_SYNC = {**IN_SYNC, "appliedHash": "sha256:old"}

DEPENDENCY_CASES = [
    pytest.param(
        state(dependencies=NOT_READY), Action.WAIT_DEPENDENCIES, id="install waits for a dependency"
    ),
    pytest.param(
        state(chart=False, dependencies=NOT_READY),
        Action.WAIT_DEPENDENCIES,
        id="no chart fetched before the dependencies are ready",
    ),
    pytest.param(state(dependencies=MISSING), Action.WAIT_DEPENDENCIES, id="catalog dependency missing"),
    pytest.param(
        state(rel=release(), status=OUT_OF_SYNC, dependencies=NOT_READY),
        Action.WAIT_DEPENDENCIES,
        id="upgrade waits for a dependency",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, dependencies=NOT_READY),
        Action.STEADY,
        id="installed app keeps running while a dependency is not ready",
    ),
    pytest.param(
        state(rel=release(), status=IN_SYNC, live=Live(drift=(CHANGED,)), dependencies=NOT_READY),
        Action.CORRECT,
        id="installed app keeps its drift corrected while a dependency is not ready",
    ),
    pytest.param(state(dependencies=CYCLE), Action.WAIT_DEPENDENCIES, id="cycle before install"),
    pytest.param(
        state(rel=release(), status=IN_SYNC, dependencies=CYCLE),
        Action.WAIT_DEPENDENCIES,
        id="cycle stalls an installed app too (a spec error)",
    ),
    pytest.param(
        state(blocker=blocker(), dependencies=CYCLE), Action.BLOCKED, id="missing input before a cycle"
    ),
    pytest.param(
        state(status=NO_RETRIES_LEFT_INSTALL, dependencies=NOT_READY),
        Action.WAIT_DEPENDENCIES,
        id="waiting is said before spent retries",
    ),
    pytest.param(
        state(rel=release("pending-install", deployed=False), dependencies=NOT_READY),
        Action.UNLOCK_UNINSTALL,
        id="an abandoned release is still recovered while waiting",
    ),
    pytest.param(state(suspended=True, dependencies=CYCLE), Action.SUSPENDED, id="suspended before a cycle"),
]


@pytest.mark.parametrize(("given", "expected"), DEPENDENCY_CASES)
def test_decide_dependencies(given: ReleaseState, expected: Action) -> None:
    assert decide(given, now=NOW).action is expected


DEPENDENT_DELETIONS = [
    pytest.param(
        {"refused": False, "holder": None, "release": release(), "dependents": ["ns/web"]},
        Deletion.WAIT_DEPENDENTS,
        id="own release with dependents waits",
    ),
    pytest.param(
        {"refused": False, "holder": None, "release": Release(), "dependents": ["ns/web"]},
        Deletion.RELEASE,
        id="nothing installed: dependents do not hold it",
    ),
    pytest.param(
        {"refused": False, "holder": None, "release": release(ownership=FOREIGN), "dependents": ["ns/web"]},
        Deletion.LEAVE_FOREIGN,
        id="foreign release left, dependents or not",
    ),
    pytest.param(
        {"refused": False, "holder": None, "release": release(), "dependents": []},
        Deletion.UNINSTALL,
        id="no dependents left: uninstall",
    ),
]


@pytest.mark.parametrize(("given", "expected"), DEPENDENT_DELETIONS)
def test_decide_deletion_with_dependents(given: dict[str, object], expected: Deletion) -> None:
    assert decide_deletion(**given) is expected  # type: ignore[arg-type]
