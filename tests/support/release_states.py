"""ReleaseState values for table tests of the release engine's pure parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubemart.domain.drift import Drift, ObjectRef
from kubemart.models.appinstall import AppInstallSpec, AppInstallStatus
from kubemart.models.marketapp import AppVersion
from kubemart.release.state import Blocker, Desired, Live, Ownership, Release, ReleaseState

NOW = 1_800_000_000.0
WANT = "sha256:want"
DEPLOY = Deployment = ObjectRef("apps/v1", "Deployment", "ns", "web")


def desired(hash_: str = WANT) -> Desired:
    return Desired(
        version=AppVersion(version="1.2.0", digest="ab" * 32, urls=["web-1.2.0.tgz"]),
        chart_digest="ab" * 32,
        applied_hash=hash_,
        values={},
    )


def release(
    status: str | None = "deployed",
    *,
    revision: int = 1,
    deployed: bool = True,
    ownership: Ownership = Ownership.OURS,
    modified_ago: float = 3600.0,
) -> Release:
    if status is None:
        return Release()
    return Release(
        status=status,
        revision=revision,
        modified_at=NOW - modified_ago,
        last_deployed_revision=(revision if status == "deployed" else max(1, revision - 1))
        if deployed
        else None,
        last_deployed_version="1.1.0" if deployed else None,
        ownership=ownership,
    )


IN_SYNC = {"appliedHash": WANT, "releaseRevision": 1}
SCALE = Drift(DEPLOY, missing=False, fields=("spec.replicas",))
CHANGED = Drift(DEPLOY, missing=False, fields=("spec.template.spec.containers[0].image",))


def state(
    *,
    rel: Release | None = None,
    status: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    chart: bool = True,
    want: Desired | bool | None = True,
    live: Live | None = None,
    **fields: Any,
) -> ReleaseState:
    rel = rel if rel is not None else Release()
    if live is None and rel.status == "deployed":
        live = Live()
    return ReleaseState(
        namespace="ns",
        name="web",
        generation=fields.pop("generation", 1),
        spec=AppInstallSpec.model_validate({"source": "demo", "app": "web", **(spec or {})}),
        status=AppInstallStatus.model_validate(status or {}),
        target_namespace="ns",
        release_name="web",
        desired=desired() if want is True else (want or None),
        chart=Path("/cache/chart.tgz") if chart else None,
        release=rel,
        live=live,
        **fields,
    )


def blocker(reason: str = "SourceNotFound", *, stalled: bool = False) -> Blocker:
    return Blocker(reason, f"{reason}: what is wrong and what to do.", stalled=stalled)
