"""The AppInstall reconcile: observe -> decide -> act -> summarise, once per pass.

Each pass runs at most one action; an action that leaves more to do (a chart fetched, a release
recovered, a failed upgrade to remediate) asks for the next pass at once, and that pass observes
afresh, as Flux helm-controller's atomic release loop does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kubemart.adapters.helm import Helm, Slot
from kubemart.adapters.kube import AppInstallResource, Body, Kube, KubeError
from kubemart.domain.bounds import check_values
from kubemart.domain.conditions import Summary
from kubemart.domain.triggers import requested_at
from kubemart.models.appinstall import AppInstall, AppInstallStatus, OwnedRelease, Phase
from kubemart.release import summarize as summary_of
from kubemart.release.actions.apply import apply
from kubemart.release.actions.correct import correct
from kubemart.release.actions.fetch import fetch
from kubemart.release.actions.remediate import remediate
from kubemart.release.actions.unlock import unlock
from kubemart.release.decide import decide, spent
from kubemart.release.dependencies import Directory
from kubemart.release.finalize import FINALIZER, Finalizer, add_finalizer
from kubemart.release.fit import FitReader
from kubemart.release.live import LiveObjects
from kubemart.release.observe import Observer
from kubemart.release.outcome import Note, Outcome, entry
from kubemart.release.state import Action, Decision, ReleaseState
from kubemart.runtime import metrics
from kubemart.runtime.controller import Key, Result, jittered
from kubemart.runtime.settings import Settings
from kubemart.services.capacity import CapacityWatch
from kubemart.services.events import EventRecorder
from kubemart.services.status import write_status
from kubemart.sources.charts import Charts

log = logging.getLogger("kubemart.release")


class ReleaseEngine:
    def __init__(
        self,
        *,
        kube: Kube,
        helm: Helm,
        charts: Charts,
        live: LiveObjects,
        settings: Settings,
        events: EventRecorder,
        claimants: Callable[[str, str], list[Body]],
        remember: Callable[[Body], Any] | None = None,
        capacity: CapacityWatch | None = None,
        apps: Directory | None = None,
    ) -> None:
        self.kube, self.helm, self.charts, self.live = kube, helm, charts, live
        self.settings, self.events, self.remember = settings, events, remember
        fit = FitReader(capacity) if capacity is not None else None
        self.observer = Observer(kube, helm, charts, live, settings, claimants, fit, apps=apps)
        self.finalizer = Finalizer(kube, helm, settings, events, claimants, apps=apps)

    async def reconcile(self, key: Key, body: Body) -> Result:
        if body["metadata"].get("deletionTimestamp"):
            return await self.finalizer.finalize(body)
        # Before anything recursive (validation, merge, hash, helm) touches a tenant's free-form values;
        # in a thread, as a large one takes a while to walk.
        refused = await asyncio.to_thread(
            check_values,
            (body.get("spec") or {}).get("values"),
            max_depth=self.settings.values_max_depth,
            max_nodes=self.settings.values_max_nodes,
            max_bytes=self.settings.values_max_bytes,
        )
        if refused is not None:
            message = f"{refused}; make spec.values smaller or shallower."
            status = AppInstallStatus.model_validate(body.get("status") or {})
            status.phase = Phase.FAILED
            if await self._write(body, status, Summary(False, "InvalidSpec", message, stalled=True)):
                self.events.warning(body, "InvalidSpec", message)
            return Result()
        try:
            app = AppInstall.model_validate(body)
        except ValidationError as exc:
            message = f"The spec cannot be read: {_first_error(exc)}; fix it."
            await self._write(body, None, Summary(False, "InvalidSpec", message, stalled=True))
            return Result()
        if FINALIZER not in (body["metadata"].get("finalizers") or []):
            try:
                body = await add_finalizer(self.kube, body)
            except KubeError as err:
                if err.conflict:
                    return Result(
                        requeue_after=0.5
                    )  # changed meanwhile: the newest body comes with its event
                raise
        state = await self.observer.observe(app, body)
        decision = decide(state, now=time.time())
        log.debug("%s/%s: %s (%s)", *key, decision.action.value, decision.why)
        outcome = await self._act(state, decision, body)
        report = summary_of.summarize(
            state,
            decision,
            outcome,
            now=datetime.now(UTC),
            history_limit=self.settings.history_limit,
            requested=requested_at(body),
        )
        changed = await self._write(body, report.status, report.summary)
        self._post(body, report.notes, changed)
        return self._result(report.next)

    async def on_error(self, key: Key, body: Body, exc: Exception) -> None:
        """The controller's catch-all: an error nobody expected still ends as a condition."""
        message = (
            f"The operator failed on this AppInstall ({type(exc).__name__}: {str(exc)[:300]}); it retries with "
            "backoff. This is a bug in Kubemart: please report it with the operator's log."
        )
        if await self._write(body, None, Summary(False, "InternalError", message)):
            self.events.warning(body, "InternalError", message)

    # --- act -----------------------------------------------------------------------------------

    async def _act(self, state: ReleaseState, decision: Decision, body: Body) -> Outcome:
        action = decision.action
        if action is Action.FETCH_CHART:
            return await fetch(self.charts, state)
        if action in (Action.CORRECT, Action.REVOKE):
            return await correct(self.live, state)
        if not decision.runs_helm:
            return Outcome()
        attempt = _attempt(state, decision)

        async def queued(why: str) -> None:
            status, summary = summary_of.progress(
                state, decision, now=datetime.now(UTC), attempt=attempt, queued=why
            )
            await self._write(body, status, summary)

        async def started() -> None:
            status, summary = summary_of.progress(state, decision, now=datetime.now(UTC), attempt=attempt)
            await self._write(body, status, summary)
            self.events.normal(body, summary_of.operation_name(decision).capitalize(), summary.message)

        slot = Slot(tenant=state.namespace, on_queued=queued, on_started=started)
        try:
            if action in (Action.INSTALL, Action.UPGRADE):
                return await apply(self.helm, state, decision, slot=slot)
            if action is Action.REMEDIATE:
                return await remediate(self.helm, state, slot=slot)
            return await unlock(self.helm, state, decision, slot=slot)
        except asyncio.CancelledError:
            await self._canceled(state, decision, body)
            raise

    async def _canceled(self, state: ReleaseState, decision: Decision, body: Body) -> None:
        """A newer spec or a deletion interrupted the operation; helm was told to stop (SIGTERM)."""
        op = summary_of.operation_name(decision)
        version = state.desired.version.version if state.desired else None
        now = datetime.now(UTC)
        message = f"{op} of {state.spec.app} {version or ''} was canceled: the spec changed or the app is being deleted."
        status = AppInstallStatus.model_validate(body.get("status") or {})
        status.history = [
            entry(
                op,
                "Canceled",
                started=now,
                finished=now,
                from_version=status.installed_version,
                to_version=version,
                message=message,
            ),
            *status.history,
        ][: self.settings.history_limit]
        status.operation = None
        if status.owned_release is None or not status.owned_release.secret_uid:
            # helm may have made a revision before it stopped: it is this AppInstall's to clean up.
            status.owned_release = OwnedRelease()
        metrics.OPERATIONS.labels(op, "Canceled").inc()
        self.events.normal(body, "OperationCanceled", f"{op} of {state.spec.app} {version or ''} canceled.")
        with contextlib.suppress(Exception):
            await asyncio.shield(
                self._write(
                    body,
                    status,
                    Summary(None, "Canceled", "The operation was canceled; starting over.", reconciling=True),
                )
            )

    # --- report --------------------------------------------------------------------------------

    def _post(self, body: Body, notes: tuple[Note, ...], changed: bool) -> None:
        for note in notes:
            if note.only_on_change and not changed:
                continue
            post = self.events.warning if note.type == "Warning" else self.events.normal
            post(body, note.reason, note.message)

    def _result(self, after: summary_of.Next) -> Result:
        if after.backoff:
            return Result(backoff=True)
        if after.after is None:
            return Result()
        if after.after < 0:
            return Result(requeue_after=jittered(self.settings.resync_interval))
        return Result(requeue_after=after.after)

    async def _write(self, body: Body, status: AppInstallStatus | None, summary: Summary) -> bool:
        """Patch status when anything but timestamps changed; True if the conditions changed."""
        status = status or AppInstallStatus.model_validate(body.get("status") or {})
        return await write_status(
            self.kube, AppInstallResource, body, status, summary, remember=self.remember
        )


def _attempt(state: ReleaseState, decision: Decision) -> int:
    used = spent(state)
    return 1 + (used.install_failures if decision.action is Action.INSTALL else used.upgrade_failures)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}"[:500]
