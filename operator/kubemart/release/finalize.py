"""Deleting an AppInstall: uninstall its release if, and only if, it is its own; then let it go.

A release this AppInstall never installed (a person's, another tool's, another AppInstall's, or one
in a namespace the tenancy policy refuses) is left exactly as it is, with an Event saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from kubemart.adapters.helm import Helm, HelmError, Slot
from kubemart.adapters.kube import AppInstallResource, Body, Kube, KubeError
from kubemart.domain.conditions import Summary
from kubemart.domain.durations import parse_duration
from kubemart.models.appinstall import AppInstallStatus, Phase
from kubemart.release import claims, ownership
from kubemart.release.dependencies import DELETION_POLICY, IGNORE_DEPENDENTS, Directory, blocking_dependents
from kubemart.release.state import Ownership, Release
from kubemart.runtime.controller import Result
from kubemart.runtime.settings import Settings
from kubemart.services.events import EventRecorder
from kubemart.services.problems import Problem
from kubemart.services.status import write_status
from kubemart.services.tenancy import tenant_account

FINALIZER = "kubemart.io/finalizer"


class Deletion(StrEnum):
    UNINSTALL = "uninstall"
    LEAVE_FOREIGN = "leave-foreign"
    """The release is someone else's: leave it, say so."""
    LEAVE_REFUSED = "leave-refused"
    """The tenancy policy refuses the namespace: leave whatever is there, say so."""
    RELEASE = "release"
    """Nothing of ours to uninstall: remove the finalizer."""
    WAIT_DEPENDENTS = "wait-dependents"
    """Other AppInstalls depend on this one: uninstall once they are gone (docs/dependencies.md)."""


def decide_deletion(
    *, refused: bool, holder: str | None, release: Release, dependents: list[str] | None = None
) -> Deletion:
    """Pure."""
    if refused:
        return Deletion.LEAVE_REFUSED if release.exists else Deletion.RELEASE
    if holder is not None or not release.exists:
        return Deletion.RELEASE  # the loser of a release conflict never owned the release
    if release.ownership is not Ownership.OURS:
        return Deletion.LEAVE_FOREIGN
    if dependents:
        return Deletion.WAIT_DEPENDENTS
    return Deletion.UNINSTALL


@dataclass
class Finalizer:
    kube: Kube
    helm: Helm
    settings: Settings
    events: EventRecorder
    claimants: object
    remember: object = None
    apps: Directory | None = None

    async def finalize(self, body: Body) -> Result:
        meta = body["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return Result()
        spec = body.get("spec") or {}
        namespace, release_name = claims.release_of(body)
        try:
            status = AppInstallStatus.model_validate(body.get("status") or {})
        except ValidationError:
            status = AppInstallStatus()
        refusal: Problem | None = None
        account = None
        try:
            account = await tenant_account(
                self.kube,
                self.settings,
                requested=spec.get("serviceAccountName"),
                app_namespace=meta["namespace"],
                target_namespace=namespace,
                check_exists=False,
            )
        except Problem as problem:
            if problem.reason == "ApiUnavailable":
                return Result(backoff=True)
            refusal = problem
        try:
            # Read with the operator's rights: when the namespace is being deleted the account's
            # RoleBinding may be gone already.
            history = await self.helm.history(release_name, namespace)
        except KubeError:
            return Result(backoff=True)
        release = ownership.release_of(history, status, namespace=meta["namespace"], name=meta["name"])
        holder = claims.holder(body, self.claimants(namespace, release_name))  # type: ignore[operator]
        verdict = decide_deletion(
            refused=refusal is not None, holder=holder, release=release, dependents=self._dependents(body)
        )
        if verdict is Deletion.WAIT_DEPENDENTS:
            return await self._wait_dependents(body, status)
        if verdict is Deletion.LEAVE_REFUSED:
            assert refusal is not None
            self.events.warning(
                body,
                "UninstallSkipped",
                f"Release {release_name} in {namespace} was left in place: {refusal.message}",
            )
        elif verdict is Deletion.LEAVE_FOREIGN:
            who = f"AppInstall {release.owner}" if release.owner else "someone else"
            self.events.warning(
                body,
                "UninstallSkipped",
                f"Release {release_name} in {namespace} was left in place: it was installed by {who}, not by this AppInstall.",
            )
        elif verdict is Deletion.UNINSTALL:
            status.phase = Phase.UNINSTALLING
            await write_status(
                self.kube,
                AppInstallResource,
                body,
                status,
                Summary(None, "Uninstalling", f"Uninstalling release {release_name}.", reconciling=True),
            )
            try:
                removed = await self.helm.uninstall(
                    release=release_name,
                    namespace=namespace,
                    timeout_seconds=min(
                        parse_duration(spec.get("timeout") or "5m"), self.settings.max_timeout_seconds
                    ),
                    acting_as=account,
                    slot=Slot(tenant=meta["namespace"]),
                )
            except HelmError as err:
                self.events.warning(body, "UninstallFailed", err.message)
                await write_status(
                    self.kube,
                    AppInstallResource,
                    body,
                    status,
                    Summary(False, "UninstallFailed", err.message),
                )
                return Result(backoff=True)
            if removed:
                self.events.normal(
                    body, "Uninstalled", f"Uninstalled release {release_name} from {namespace}."
                )
        return await self._release(body)

    def _dependents(self, body: Body) -> list[str]:
        apps = self.apps
        if apps is None:
            return []
        meta = body["metadata"]
        found = apps.bodies(apps.lookup("dependents", (meta["namespace"], meta["name"])))
        return blocking_dependents(body, found, apps.get)

    async def _wait_dependents(self, body: Body, status: AppInstallStatus) -> Result:
        """No timer: a dependent's deletion (or its dependsOn edited) wakes this one."""
        names = self._dependents(body)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        message = (
            f"The uninstall waits: AppInstall(s) {shown} depend on this one (spec.dependsOn). It goes on once "
            f"they are deleted, or at once with the annotation {DELETION_POLICY}={IGNORE_DEPENDENTS}."
        )
        summary = Summary(False, "DependentsExist", message, reconciling=True)
        if await write_status(self.kube, AppInstallResource, body, status, summary):
            self.events.warning(body, "DependentsExist", message)
        return Result()

    async def _release(self, body: Body) -> Result:
        """Remove our finalizer, guarded by a `test` op rather than a resourceVersion, so that a status
        written meanwhile does not make it fail (and run the uninstall a second time)."""
        meta = body["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        index = finalizers.index(FINALIZER)
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        try:
            await self.kube.json_patch(AppInstallResource, meta["name"], ops, namespace=meta["namespace"])
        except KubeError as err:
            if err.status in (409, 422):
                return Result(
                    requeue_after=0.5
                )  # the list changed meanwhile: the newest body comes with its event
            raise
        return Result()


async def add_finalizer(kube: Kube, body: Body) -> Body:
    meta = body["metadata"]
    patch = {
        "metadata": {
            "finalizers": [*(meta.get("finalizers") or []), FINALIZER],
            "resourceVersion": meta["resourceVersion"],
        }
    }
    updated = await kube.merge_patch(AppInstallResource, meta["name"], patch, namespace=meta["namespace"])
    return updated or body
