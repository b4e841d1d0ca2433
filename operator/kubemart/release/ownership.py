"""Whose Helm release is it? The operator upgrades, rolls back and uninstalls only its own (pure).

A release name is only a name: a person's `helm install`, another tool, or another AppInstall may
have taken it. The operator marks what it installs with labels on the release's storage
(`kubemart.io/owner-namespace`, `kubemart.io/owner-name`), but labels can be written by anyone who
may write Secrets in that namespace, so they are not proof. The proof is in the AppInstall's status,
which only the operator writes: the uid of a storage Secret of a revision it made. A tenant can copy
labels; it cannot give a Secret a uid the API server did not.
"""

from __future__ import annotations

import hashlib
import re

from kubemart.adapters.helm import ReleaseHistory
from kubemart.models.appinstall import AppInstallStatus, OwnedRelease
from kubemart.release.state import Ownership, Release

OWNER_NAMESPACE = "kubemart.io/owner-namespace"
OWNER_NAME = "kubemart.io/owner-name"
ADOPT_ANNOTATION = "kubemart.io/adopt-release"
"""On an AppInstall: "true" asks to take over a release it did not install (see ADOPTION_LABEL)."""
ADOPTION_LABEL = "kubemart.io/release-adoption"
"""On a namespace, set by an admin: "allowed" lets AppInstalls adopt the releases in it."""
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def owner_labels(namespace: str, name: str) -> dict[str, str]:
    """Pure: the labels that mark a release as `namespace/name`'s (a long name is hashed to fit)."""
    value = name if _LABEL_VALUE.fullmatch(name) else "h-" + hashlib.sha256(name.encode()).hexdigest()[:40]
    return {OWNER_NAMESPACE: namespace, OWNER_NAME: value}


def release_of(history: ReleaseHistory, status: AppInstallStatus, *, namespace: str, name: str) -> Release:
    """Pure: the release as decide() needs it, with whose it is."""
    live = [r for r in history.revisions if r.status != "uninstalled"]
    current = history.current
    if not live or current is None:
        return Release(status=current.status if current else None)
    last = history.last_deployed
    mine = owner_labels(namespace, name)
    labelled = {k: current.labels.get(k) for k in mine}
    ownership = Ownership.OURS if _proven(history, status, labelled == mine) else Ownership.FOREIGN
    owner = None
    if ownership is Ownership.FOREIGN and labelled.get(OWNER_NAMESPACE) and labelled != mine:
        owner = f"{labelled[OWNER_NAMESPACE]}/{labelled[OWNER_NAME]}"
    return Release(
        status=current.status,
        revision=current.revision,
        modified_at=current.modified_at,
        last_deployed_revision=last.revision if last else None,
        last_deployed_version=last.chart_version if last else None,
        ownership=ownership,
        owner=owner,
    )


def _proven(history: ReleaseHistory, status: AppInstallStatus, labelled_mine: bool) -> bool:
    recorded = status.owned_release
    uids = {r.uid for r in history.revisions if r.uid}
    revisions = {r.revision for r in history.revisions}
    if recorded is not None:
        if recorded.secret_uid:
            return recorded.secret_uid in uids
        return labelled_mine  # made by the operator's last helm operation; its Secret's uid is recorded now
    if status.operation is not None and labelled_mine:
        return True  # the operator stopped mid-operation, before it could record the revision
    # Installed by a version of the operator that did not mark releases yet.
    unmarked = not any(OWNER_NAMESPACE in r.labels for r in history.revisions)
    return (
        recorded is None
        and unmarked
        and status.installed_version is not None
        and status.release_revision in revisions
    )


def record(history: ReleaseHistory) -> OwnedRelease | None:
    """Pure: what to keep in status once the release is known to be ours: its newest revision."""
    current = history.current
    if current is None or current.status == "uninstalled":
        return None
    return OwnedRelease(revision=current.revision, secret_uid=current.uid)
