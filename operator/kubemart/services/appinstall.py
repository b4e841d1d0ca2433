"""AppInstall reconcile: observe the catalog, values and release; decide; act through helm.

observe() only reads (the catalog, referenced ConfigMaps/Secrets, Helm's release records) and
runs no subprocess, so an app that is in sync costs a few API reads and nothing else.
decide() is pure (domain.release_plan). act() runs one helm operation and records it in status
(operation, history, conditions) and as an Event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kubemart.adapters import chart_repo
from kubemart.adapters.helm import Helm, HelmError, ReleaseHistory, manifest_objects
from kubemart.adapters.kube import (
    AppInstallResource,
    Body,
    Kube,
    KubeError,
    MarketAppResource,
    MarketSourceResource,
)
from kubemart.domain.bounds import ValueLimits, check_values
from kubemart.domain.catalog import object_name
from kubemart.domain.conditions import Summary
from kubemart.domain.durations import parse_duration
from kubemart.domain.entrances import entrances_from
from kubemart.domain.release_plan import PENDING, Action, Desired, Observed, decide
from kubemart.domain.tenancy import Account, forbidden_message
from kubemart.domain.triggers import requested_at
from kubemart.domain.values import InvalidValues, effective_values, merge_values, values_hash
from kubemart.domain.versions import InvalidConstraint, parse_constraint, resolve_version
from kubemart.models.appinstall import (
    AppInstall,
    AppInstallStatus,
    Corrections,
    HistoryEntry,
    Operation,
    Phase,
    UpgradeStrategy,
    ValuesSourceKind,
)
from kubemart.models.marketapp import AppVersion, MarketApp
from kubemart.models.marketsource import MarketSource
from kubemart.runtime import metrics
from kubemart.runtime.controller import Key, Result, backoff, jittered
from kubemart.runtime.settings import Settings
from kubemart.services.correction import Corrector
from kubemart.services.events import EventRecorder
from kubemart.services.licensing import find_license
from kubemart.services.problems import Problem
from kubemart.services.source_auth import source_auth
from kubemart.services.status import write_status
from kubemart.services.tenancy import tenant_account

FINALIZER = "kubemart.io/finalizer"
PENDING_GRACE = 10.0
"""Seconds a release may sit in a pending state before the operator takes it for abandoned."""


@dataclass(frozen=True)
class Plan:
    """Everything observe() learned: what is wanted, what is there."""

    app: AppInstall
    source: MarketSource
    version: AppVersion
    values: dict[str, Any]
    desired: Desired
    release: str
    namespace: str
    history: ReleaseHistory
    chart: Path = Path()
    """The downloaded chart archive; set only when an install or upgrade is due."""
    licensed: bool = True
    """False for a paid app whose licence is gone (refunded) while its release exists."""
    account: Account | None = None
    """The ServiceAccount whose permissions helm and corrections use; None: the operator's."""


@dataclass
class AppInstalls:
    kube: Kube
    helm: Helm
    settings: Settings
    events: EventRecorder
    claims: Any = None
    """Callable returning every AppInstall body the operator knows, to find release conflicts."""
    remember: Any = None
    """Callable taking a body the operator just wrote, so that the loop never reconciles an older one."""
    failures: dict[Key, int] = field(default_factory=dict)
    stalled: dict[Key, int | None] = field(default_factory=dict)
    """The generation at which an app ran out of retries."""
    _reported: dict[Key, str] = field(default_factory=dict)
    """The drift last reported per app in warn mode, so that a resync does not repeat the Event."""

    def __post_init__(self) -> None:
        self.corrector = Corrector(self.kube, self.helm)

    def forget(self, key: Key) -> None:
        """The AppInstall is gone: drop what was kept about it."""
        for kept in (self.failures, self.stalled, self._reported):
            kept.pop(key, None)

    # --- the loop ------------------------------------------------------------------------------

    async def reconcile(self, key: Key, body: Body) -> Result:
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            return await self._finalize(body)
        # Before anything recursive (validation, merge, hash, helm) touches a tenant's free-form values;
        # in a thread, as up to max_nodes steps would hold the event loop for a large one.
        limits = self._value_limits()
        refused = await asyncio.to_thread(
            check_values,
            (body.get("spec") or {}).get("values"),
            max_depth=limits.max_depth,
            max_nodes=limits.max_nodes,
            max_bytes=limits.max_bytes,
        )
        if refused is not None:
            status = AppInstallStatus.model_validate(body.get("status") or {})
            return await self._problem(
                key, body, status, Problem("InvalidSpec", f"{refused}.", stalled=True, phase=Phase.FAILED)
            )
        try:
            app = AppInstall.model_validate(body)
        except ValidationError as exc:
            await self._write(
                body, None, Summary(False, "InvalidSpec", f"The spec cannot be read: {exc}", stalled=True)
            )
            return Result()
        status = app.status.model_copy(deep=True)
        asked = requested_at(body)
        if asked is not None and asked != status.last_handled_reconcile_at:
            self.failures.pop(key, None)  # a person asked for a retry: start counting again
            self.stalled.pop(key, None)
        status.last_handled_reconcile_at = asked or status.last_handled_reconcile_at
        if status.observed_generation != meta.get("generation"):
            self.failures.pop(key, None)
            self.stalled.pop(key, None)
        if status.operation is not None and status.operation.phase == "Running":
            # Written by an operator process that died mid-operation: say so in the history.
            op = status.operation
            self._record(
                status,
                op.type,
                status.installed_version,
                None,
                None,
                "Interrupted",
                op.started_at or datetime.now(UTC),
                f"The operator stopped while this {op.type} ran; the release is checked and recovered if needed.",
            )
            status.operation = None
        if FINALIZER not in (meta.get("finalizers") or []):
            body = await self._add_finalizer(body)
        if app.spec.suspend:
            status.phase = Phase.SUSPENDED
            await self._write(
                body,
                status,
                Summary(
                    None, "Suspended", "Reconciliation is suspended; set spec.suspend to false to resume."
                ),
            )
            return Result()
        try:
            plan = await self.observe(app, body)
            self._check_claim(app, body, plan)
        except Problem as problem:
            return await self._problem(key, body, status, problem)
        if not plan.licensed:
            return await self._revoked(key, body, status, plan)
        action = decide(plan.desired, _observed(plan, status))
        if action is Action.NONE:
            return await self._steady(key, body, status, plan)
        if self.stalled.get(key) == meta.get("generation"):
            return Result()  # retries are exhausted: wait for a new spec or a retry request
        current = plan.history.current
        if action is Action.UNLOCK_ROLLBACK or (
            action is Action.UNLOCK_UNINSTALL and current and current.status in PENDING
        ):
            waited = time.time() - (current.modified_at or 0) if current else PENDING_GRACE
            if waited < PENDING_GRACE:
                # Give an operation that is still alive (a person's helm command) time to finish.
                return Result(requeue_after=PENDING_GRACE - waited + 0.5)
        if action in (Action.INSTALL, Action.UPGRADE):
            try:
                plan = replace(plan, chart=await self._chart(plan))
            except Problem as problem:
                return await self._problem(key, body, status, problem)
        return await self.act(key, body, status, plan, action)

    # --- observe -------------------------------------------------------------------------------

    async def observe(self, app: AppInstall, body: Body) -> Plan:
        spec = app.spec
        namespace = spec.target_namespace or body["metadata"]["namespace"]
        release = spec.release_name or body["metadata"]["name"]
        account = await tenant_account(
            self.kube,
            self.settings,
            requested=spec.service_account_name,
            app_namespace=body["metadata"]["namespace"],
            target_namespace=namespace,
        )
        source_body = await self._get(MarketSourceResource, spec.source)
        if source_body is None:
            raise Problem(
                "SourceNotFound",
                f"MarketSource {spec.source} does not exist; create it or fix spec.source (kubectl get marketsources).",
                phase=Phase.PENDING,
            )
        source = MarketSource.model_validate(source_body)
        app_body = await self._get(MarketAppResource, object_name(spec.source, spec.app))
        if app_body is None:
            synced = source.status.revision is not None
            raise Problem(
                "AppNotFound",
                f"App {spec.app} is not in the catalog of {spec.source}; check the name with "
                f"`kubectl get marketapps -l kubemart.io/source={spec.source}`."
                if synced
                else f"MarketSource {spec.source} has not synced yet; the app will be looked up when it has.",
                phase=Phase.PENDING,
                stalled=synced,
            )
        market_app = MarketApp.model_validate(app_body)
        version = self._resolve(app, market_app)
        values = await self._values(app, body["metadata"]["namespace"])
        licensed = True
        if market_app.spec.price is not None:
            gate = await find_license(
                self.kube, body["metadata"]["namespace"], source, market_app, spec.source
            )
            if gate.license is not None:
                # The app can check its own licence: the verified receipt's Secret, by name.
                values = merge_values(
                    [
                        values,
                        {
                            "kubemartLicense": {
                                "secretName": gate.license.secret,
                                "payment": gate.license.payment,
                            }
                        },
                    ]
                )
            else:
                licensed = False
                price = market_app.spec.price
                where = f" or pay at {gate.checkout_url}" if gate.checkout_url else ""
                payment_required = Problem(
                    "PaymentRequired",
                    f"{spec.app} costs {price.amount} {price.currency}: create a Payment for source {spec.source} and "
                    f"app {spec.app} in namespace {body['metadata']['namespace']}{where}; the app installs once it is Verified.",
                    phase=Phase.AWAITING_PAYMENT,
                )
        if not await self._namespace_exists(namespace):
            raise Problem(
                "TargetNamespaceNotFound",
                f"The target namespace {namespace} does not exist; create it or fix spec.targetNamespace.",
                phase=Phase.PENDING,
            )
        digest = version.digest or f"unknown:{spec.source}/{spec.app}@{version.version}"
        try:
            history = await self.helm.history(release, namespace)
        except KubeError as err:
            raise Problem(
                "ReleaseUnreadable", f"Helm's release records cannot be read: {err.message}"
            ) from err
        if not licensed and history.current is None:
            raise payment_required
        return Plan(
            licensed=licensed,
            app=app,
            source=source,
            version=version,
            values=values,
            desired=Desired(version.version, digest, values_hash(chart_digest=digest, values=values)),
            release=release,
            namespace=namespace,
            history=history,
            account=account,
        )

    def _resolve(self, app: AppInstall, market_app: MarketApp) -> AppVersion:
        constraint = app.spec.version
        if constraint:
            try:
                parse_constraint(constraint)
            except InvalidConstraint as exc:
                raise Problem(
                    "InvalidVersion", f"{exc}; fix spec.version.", stalled=True, phase=Phase.FAILED
                ) from exc
        by_version = {v.version: v for v in market_app.spec.versions}
        chosen = resolve_version(constraint, by_version)
        if chosen is None:
            known = ", ".join(list(by_version)[:8]) or "none"
            raise Problem(
                "NoMatchingVersion",
                f"No version of {app.spec.app} matches {constraint or 'latest stable'} (catalog has: {known}); "
                "change spec.version, or wait for the catalog to publish one.",
                stalled=True,
                phase=Phase.FAILED,
            )
        return by_version[chosen]

    def _value_limits(self) -> ValueLimits:
        cfg = self.settings
        return ValueLimits(cfg.values_max_depth, cfg.values_max_nodes, cfg.values_max_bytes)

    async def _values(self, app: AppInstall, namespace: str) -> dict[str, Any]:
        documents: list[tuple[str, str]] = []
        for ref in app.spec.values_from:
            what = f"{ref.kind.value} {namespace}/{ref.name}"
            try:
                if ref.kind is ValuesSourceKind.CONFIG_MAP:
                    data = await self.kube.read_configmap_data(ref.name, namespace)
                else:
                    data = await self.kube.read_secret_data(ref.name, namespace)
            except KubeError as err:
                raise Problem("ValuesSourceUnreadable", f"{what} cannot be read: {err.message}") from err
            if data is None or ref.key not in data:
                if ref.optional:
                    continue
                missing = what if data is None else f"key {ref.key} in {what}"
                raise Problem(
                    "ValuesSourceNotFound",
                    f"{missing} named in spec.valuesFrom does not exist; create it or mark the entry optional.",
                    phase=Phase.PENDING,
                )
            documents.append((f"{what} key {ref.key}", data[ref.key]))
        try:
            # Parsing a tenant's YAML is the heavy part (bounded in size, depth and time): off the loop.
            return await asyncio.to_thread(
                effective_values, documents, app.spec.values, limits=self._value_limits()
            )
        except InvalidValues as exc:
            raise Problem("InvalidValues", f"{exc}; fix it.", stalled=True, phase=Phase.FAILED) from exc

    async def _namespace_exists(self, name: str) -> bool:
        try:
            return await self.kube.namespace_exists(name)
        except KubeError as err:
            if err.status == 403:
                return True  # not allowed to look: let helm find out
            raise Problem("ApiUnavailable", f"Reading namespace {name} failed: {err.message}") from err

    async def _get(self, res: Any, name: str) -> Body | None:
        try:
            return await self.kube.get(res, name)
        except KubeError as err:
            raise Problem("ApiUnavailable", f"Reading {name} failed: {err.message}") from err

    def _holder(self, body: Body, namespace: str, release: str) -> Body | None:
        """The older AppInstall that owns the same release, if any: two may not share one."""
        if self.claims is None:
            return None
        me = body["metadata"]
        mine = (me.get("creationTimestamp", ""), me.get("uid", ""))
        for other in self.claims():
            om = other["metadata"]
            if om.get("uid") == me.get("uid") or om.get("deletionTimestamp"):
                continue
            ospec = other.get("spec") or {}
            claim = (
                ospec.get("targetNamespace") or om.get("namespace"),
                ospec.get("releaseName") or om.get("name"),
            )
            if claim == (namespace, release) and (om.get("creationTimestamp", ""), om.get("uid", "")) < mine:
                return dict(other)
        return None

    def _check_claim(self, app: AppInstall, body: Body, plan: Plan) -> None:
        holder = self._holder(body, plan.namespace, plan.release)
        if holder is not None:
            om = holder["metadata"]
            raise Problem(
                "ReleaseConflict",
                f"Release {plan.release} in namespace {plan.namespace} belongs to AppInstall "
                f"{om.get('namespace')}/{om.get('name')}; set a different spec.releaseName or targetNamespace.",
                stalled=True,
                phase=Phase.FAILED,
            )

    # --- act -----------------------------------------------------------------------------------

    async def act(self, key: Key, body: Body, status: AppInstallStatus, plan: Plan, action: Action) -> Result:
        spec = plan.app.spec
        timeout = parse_duration(spec.timeout)
        attempt = self.failures.get(key, 0) + 1
        started = datetime.now(UTC)
        from_version = status.installed_version
        op_type = {Action.INSTALL: "install", Action.UPGRADE: "upgrade"}.get(action, "recover")
        status.operation = Operation(
            type=op_type,
            phase="Running",
            started_at=started,
            attempt=attempt,
            message=f"{op_type} {spec.app} {plan.version.version}",
        )
        status.phase = Phase.INSTALLING if action is Action.INSTALL else Phase.UPGRADING
        progressing = f"Running helm {op_type} of {spec.app} {plan.version.version} (attempt {attempt})."
        await self._write(body, status, Summary(None, "Progressing", progressing, reconciling=True))
        self.events.normal(body, op_type.capitalize(), progressing)
        try:
            if action in (Action.UNLOCK_ROLLBACK, Action.UNLOCK_UNINSTALL):
                await self._unlock(body, plan, action, timeout)
                return Result(requeue_after=0)
            record = await self.helm.upgrade_install(
                release=plan.release,
                namespace=plan.namespace,
                chart=plan.chart,
                values=plan.values,
                timeout_seconds=timeout,
                install=action is Action.INSTALL,
                description=f"kubemart: {op_type} {spec.app} {plan.version.version}",
                acting_as=plan.account,
            )
        except asyncio.CancelledError:
            # A newer spec or a deletion interrupted this; helm was told to stop (SIGTERM).
            self._record(
                status,
                op_type,
                from_version,
                plan.version.version,
                None,
                "Canceled",
                started,
                f"{op_type} of {spec.app} {plan.version.version} was canceled: the spec changed or the app is being deleted.",
            )
            status.operation = None
            self.events.normal(
                body, "OperationCanceled", f"{op_type} of {spec.app} {plan.version.version} canceled."
            )
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self._write(
                        body,
                        status,
                        Summary(
                            None, "Canceled", "The operation was canceled; starting over.", reconciling=True
                        ),
                    )
                )
            metrics.OPERATIONS.labels(op_type, "Canceled").inc()
            raise
        except HelmError as err:
            if err.reason == "Forbidden":
                err = HelmError(
                    err.reason,
                    forbidden_message(err.message, plan.account),
                    retryable=err.retryable,
                    detail=err.detail,
                )
            self.failures[key] = attempt
            retries = (
                spec.install.remediation.retries
                if action is Action.INSTALL
                else spec.upgrade.remediation.retries
            )
            exhausted = not err.retryable or attempt > retries
            self._record(
                status, op_type, from_version, plan.version.version, None, "Failed", started, err.message
            )
            metrics.OPERATIONS.labels(op_type, "Failed").inc()
            metrics.OPERATION_SECONDS.labels(op_type).observe((datetime.now(UTC) - started).total_seconds())
            status.operation = None
            status.phase = Phase.FAILED
            self.events.warning(body, err.reason, err.message)
            if action is Action.UPGRADE and plan.history.last_deployed is not None:
                await self._remediate_upgrade(body, status, plan, timeout)
            if exhausted:
                # Nothing more runs for this generation until the spec changes or a retry is asked for,
                # however often the release's objects change meanwhile.
                self.stalled[key] = body["metadata"].get("generation")
            if err.retryable and exhausted:
                summary = Summary(
                    False,
                    err.reason,
                    err.message,
                    stalled=True,
                    stalled_reason="RetriesExhausted",
                    stalled_message=(
                        f"{op_type} failed {attempt} time(s), more than the {retries} retries allowed; fix the cause and "
                        "set the annotation kubemart.io/reconcile-requested-at to any new value to retry."
                    ),
                )
            else:
                summary = Summary(False, err.reason, err.message, stalled=exhausted)
            await self._write(body, status, summary)
            return Result() if exhausted else Result(requeue_after=backoff(attempt))
        self.failures.pop(key, None)
        status.operation = None
        status.phase = Phase.RUNNING
        status.installed_version = plan.version.version
        status.chart_digest = plan.desired.chart_digest
        status.release_revision = record.revision
        status.applied_hash = plan.desired.applied_hash
        status.entrances = entrances_from(manifest_objects(record.manifest), plan.namespace)
        metrics.OPERATIONS.labels(op_type, "Succeeded").inc()
        metrics.OPERATION_SECONDS.labels(op_type).observe((datetime.now(UTC) - started).total_seconds())
        verb = "Installed" if action is Action.INSTALL else "Upgraded"
        message = (
            f"{verb} {spec.app} {plan.version.version} as release {plan.release} revision {record.revision}."
        )
        self._record(
            status,
            op_type,
            from_version,
            plan.version.version,
            record.revision,
            "Succeeded",
            started,
            message,
        )
        await self._write(
            body,
            status,
            Summary(True, "Succeeded", f"{spec.app} {plan.version.version} is installed and ready."),
        )
        self.events.normal(body, verb, message)
        return Result(requeue_after=jittered(self.settings.resync_interval))

    async def _steady(self, key: Key, body: Body, status: AppInstallStatus, plan: Plan) -> Result:
        """The release is what the spec asks for: correct drift, hold a stop, judge health."""
        self.failures.pop(key, None)
        spec = plan.app.spec
        current = plan.history.current
        status.installed_version = status.installed_version or plan.desired.version
        stopped = spec.stopped
        restore = None if stopped else (status.stopped_replicas or None)
        try:
            check = await self.corrector.check(
                release=plan.release,
                namespace=plan.namespace,
                revision=current.revision if current else 0,
                mode=spec.drift_detection.mode,
                stopped=stopped,
                restore=restore,
                acting_as=plan.account,
            )
        except KubeError as err:
            return await self._problem(
                key,
                body,
                status,
                Problem("ApiUnavailable", f"Reading the app's objects failed: {err.message}"),
            )
        if stopped and not status.stopped_replicas:
            status.stopped_replicas = {k: v for k, v in check.replicas.items() if v} or None
        drifted = [d for d in check.drift if not (d.fields == ("spec.replicas",) and (stopped or restore))]
        corrected = [d for d in check.corrected if d in drifted]
        if corrected:
            summary = "; ".join(d.describe() for d in corrected)
            count = (status.corrections.count if status.corrections else 0) + len(corrected)
            status.corrections = Corrections(
                count=count, last_time=datetime.now(UTC), last_summary=summary[:1000]
            )
            metrics.CORRECTIONS.inc(len(corrected))
            self.events.warning(body, "DriftCorrected", f"Corrected drift: {summary}.")
        detected = [d for d in drifted if d not in corrected]
        note = ""
        if detected:
            summary = "; ".join(d.describe() for d in detected)
            note = f" Drift detected and not corrected (driftDetection.mode is {spec.drift_detection.mode.value}): {summary}."
            if self._reported.get(key) != summary:
                self._reported[key] = summary
                self.events.warning(body, "DriftDetected", f"Drift detected: {summary}.")
        else:
            self._reported.pop(key, None)
        if check.failed:
            self.events.warning(body, "DriftCorrectionFailed", "; ".join(check.failed))
            note += f" Correcting drift failed: {'; '.join(check.failed)}."
        app_name, version = spec.app, status.installed_version
        if stopped:
            if check.scaled_to_zero and not check.corrected:
                status.phase = Phase.STOPPED
                summary_ = Summary(
                    True,
                    "Stopped",
                    f"{app_name} {version} is stopped; set spec.stopped to false to start it.",
                )
            else:
                status.phase = Phase.STOPPING
                summary_ = Summary(
                    None, "Stopping", f"Scaling {app_name}'s workloads to zero.", reconciling=True
                )
            await self._write(body, status, summary_)
            return Result(requeue_after=jittered(self.settings.resync_interval))
        if restore and not check.failed:
            status.stopped_replicas = None
        if check.unhealthy:
            status.phase = Phase.DEGRADED
            message = (
                f"{app_name} {version} is installed but not healthy: {'; '.join(check.unhealthy[:5])}.{note}"
            )
            await self._write(body, status, Summary(False, "WorkloadsNotReady", message))
            # Workload status changes wake the app; look again later in case one was missed.
            return Result(requeue_after=min(60.0, self.settings.resync_interval))
        status.phase = Phase.RUNNING
        await self._write(
            body, status, Summary(True, "Succeeded", f"{app_name} {version} is installed and ready.{note}")
        )
        return Result(requeue_after=jittered(self.settings.resync_interval))

    async def _revoked(self, key: Key, body: Body, status: AppInstallStatus, plan: Plan) -> Result:
        """The licence of an installed paid app is gone: stop it, keep its data, say why."""
        current = plan.history.current
        try:
            await self.corrector.check(
                release=plan.release,
                namespace=plan.namespace,
                revision=current.revision if current else 0,
                mode=plan.app.spec.drift_detection.mode,
                stopped=True,
                acting_as=plan.account,
            )
        except KubeError as err:
            return await self._problem(
                key, body, status, Problem("ApiUnavailable", f"Stopping the app failed: {err.message}")
            )
        status.phase = Phase.STOPPED
        message = (
            f"The licence for {plan.app.spec.app} was revoked (the payment was refunded): the app is stopped and its "
            "data kept. Buy it again with a new Payment to start it."
        )
        if await self._write(body, status, Summary(False, "LicenseRevoked", message, stalled=True)):
            self.events.warning(body, "LicenseRevoked", message)
        return Result(requeue_after=jittered(self.settings.resync_interval))

    async def _remediate_upgrade(
        self, body: Body, status: AppInstallStatus, plan: Plan, timeout_seconds: float
    ) -> None:
        """After a failed upgrade: go back to the last good revision, or uninstall, as the spec says."""
        strategy = plan.app.spec.upgrade.remediation.strategy
        last = plan.history.last_deployed
        started = datetime.now(UTC)
        try:
            if strategy is UpgradeStrategy.ROLLBACK and last is not None:
                await self.helm.rollback(
                    release=plan.release,
                    namespace=plan.namespace,
                    revision=last.revision,
                    timeout_seconds=timeout_seconds,
                    acting_as=plan.account,
                )
                message = f"Rolled back release {plan.release} to revision {last.revision} after the failed upgrade."
                self._record(
                    status,
                    "rollback",
                    plan.version.version,
                    last.chart_version or status.installed_version,
                    last.revision,
                    "Succeeded",
                    started,
                    message,
                )
            else:
                await self.helm.uninstall(
                    release=plan.release,
                    namespace=plan.namespace,
                    timeout_seconds=timeout_seconds,
                    acting_as=plan.account,
                )
                message = f"Uninstalled release {plan.release} after the failed upgrade; the next attempt installs it afresh."
                self._record(
                    status, "uninstall", plan.version.version, None, None, "Succeeded", started, message
                )
                status.installed_version = None
                status.applied_hash = None
            self.events.normal(body, "Remediated", message)
        except HelmError as err:
            self._record(
                status, strategy.value, plan.version.version, None, None, "Failed", started, err.message
            )
            self.events.warning(body, "RemediationFailed", err.message)

    async def _chart(self, plan: Plan) -> Path:
        auth = await source_auth(self.kube, plan.source)
        urls = plan.version.urls
        if not urls:
            raise Problem(
                "ChartDownloadFailed",
                f"The catalog lists no download URL for {plan.app.spec.app} {plan.version.version}.",
            )
        url = chart_repo.resolve_chart_url(plan.source.spec.url, urls[0])
        try:
            async with chart_repo.make_client(auth=auth) as client:
                return await chart_repo.download_chart(
                    client,
                    url,
                    expected_digest=plan.version.digest,
                    cache_dir=self.settings.chart_cache_dir,
                    auth=chart_repo.chart_auth(plan.source.spec.url, url, auth),
                )
        except chart_repo.RepoError as err:
            raise Problem("ChartDownloadFailed", f"{err.message} Will retry.", phase=Phase.PENDING) from err

    async def _unlock(self, body: Body, plan: Plan, action: Action, timeout_seconds: float) -> None:
        """A release left pending by an operation that died, or failed with no good revision: recover it."""
        current = plan.history.current
        state = current.status if current else "pending"
        if action is Action.UNLOCK_ROLLBACK and plan.history.last_deployed is not None:
            target = plan.history.last_deployed.revision
            await self.helm.rollback(
                release=plan.release,
                namespace=plan.namespace,
                revision=target,
                timeout_seconds=timeout_seconds,
                acting_as=plan.account,
            )
            self.events.warning(
                body,
                "ReleaseRecovered",
                f"Release {plan.release} was stuck in {state}; rolled back to revision {target}.",
            )
            return
        await self.helm.uninstall(
            release=plan.release,
            namespace=plan.namespace,
            timeout_seconds=timeout_seconds,
            acting_as=plan.account,
        )
        self.events.normal(
            body,
            "ReleaseRecovered",
            f"Release {plan.release} was {state} with no good revision; uninstalled it to install afresh.",
        )

    def _record(
        self,
        status: AppInstallStatus,
        operation: str,
        from_version: str | None,
        to_version: str | None,
        revision: int | None,
        result: str,
        started: datetime,
        message: str,
    ) -> None:
        entry = HistoryEntry(
            operation=operation,
            from_version=from_version,
            to_version=to_version,
            revision=revision,
            result=result,
            started_at=started,
            finished_at=datetime.now(UTC),
            message=message,
        )
        status.history = [entry, *status.history][: self.settings.history_limit]

    # --- problems, deletion, status ------------------------------------------------------------

    async def _problem(self, key: Key, body: Body, status: AppInstallStatus, problem: Problem) -> Result:
        failures = self.failures.get(key, 0) + 1
        self.failures[key] = failures
        status.phase = Phase(problem.phase) if problem.phase else Phase.FAILED
        status.operation = None
        changed = await self._write(
            body, status, Summary(False, problem.reason, problem.message, stalled=problem.stalled)
        )
        if changed:
            self.events.warning(body, problem.reason, problem.message)
        if problem.stalled:
            # Nothing to retry; a spec, catalog or values change wakes the object. Look again rarely.
            return Result(requeue_after=jittered(self.settings.resync_interval))
        return Result(requeue_after=backoff(failures))

    async def _finalize(self, body: Body) -> Result:
        meta = body["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return Result()
        spec = body.get("spec") or {}
        namespace = spec.get("targetNamespace") or meta["namespace"]
        release = spec.get("releaseName") or meta["name"]
        status = AppInstallStatus.model_validate(body.get("status") or {})
        key = (meta["namespace"], meta["name"])
        try:
            # The same rules as for installing: deleting an AppInstall must not uninstall a release
            # its namespace may not reach, nor do so with the operator's rights.
            account = await tenant_account(
                self.kube,
                self.settings,
                requested=spec.get("serviceAccountName"),
                app_namespace=meta["namespace"],
                target_namespace=namespace,
                check_exists=False,
            )
            refused = None
        except Problem as problem:
            if problem.reason == "ApiUnavailable":
                self.failures[key] = self.failures.get(key, 0) + 1
                return Result(requeue_after=backoff(self.failures[key]))
            account, refused = None, problem
        if refused is not None:
            if await self._has_release(release, namespace):
                self.events.warning(
                    body,
                    "UninstallSkipped",
                    f"Release {release} in {namespace} was left in place: {refused.message}",
                )
        # The loser of a release conflict never owned the release: it must not uninstall it.
        elif self._holder(body, namespace, release) is None:
            status.phase = Phase.UNINSTALLING
            await self._write(
                body,
                status,
                Summary(None, "Uninstalling", f"Uninstalling release {release}.", reconciling=True),
            )
            try:
                timeout = parse_duration(spec.get("timeout") or "5m")
                # Looked up with the operator's rights: when the namespace is being deleted the
                # account's RoleBinding may be gone already, and nothing is left to uninstall.
                removed = False
                if account is None or await self._has_release(release, namespace):
                    removed = await self.helm.uninstall(
                        release=release, namespace=namespace, timeout_seconds=timeout, acting_as=account
                    )
            except HelmError as err:
                self.events.warning(body, "UninstallFailed", err.message)
                await self._write(body, status, Summary(False, "UninstallFailed", err.message))
                key = (meta["namespace"], meta["name"])
                self.failures[key] = self.failures.get(key, 0) + 1
                return Result(requeue_after=backoff(self.failures[key]))
            if removed:
                self.events.normal(body, "Uninstalled", f"Uninstalled release {release} from {namespace}.")
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        try:
            await self.kube.merge_patch(
                AppInstallResource,
                meta["name"],
                {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}},
                namespace=meta["namespace"],
            )
        except KubeError as err:
            if err.conflict:
                return Result(requeue_after=0.5)  # changed meanwhile: the newest body comes with its event
            raise
        return Result()

    async def _has_release(self, release: str, namespace: str) -> bool:
        try:
            return (await self.helm.history(release, namespace)).current is not None
        except KubeError:
            return True  # cannot tell: let helm find out

    async def _add_finalizer(self, body: Body) -> Body:
        meta = body["metadata"]
        patch = {
            "metadata": {
                "finalizers": [*(meta.get("finalizers") or []), FINALIZER],
                "resourceVersion": meta["resourceVersion"],
            }
        }
        updated = await self.kube.merge_patch(
            AppInstallResource, meta["name"], patch, namespace=meta["namespace"]
        )
        return updated or body

    async def _write(self, body: Body, status: AppInstallStatus | None, summary: Summary) -> bool:
        """Patch status when anything but timestamps changed; True if the conditions changed."""
        status = status or AppInstallStatus.model_validate(body.get("status") or {})
        return await write_status(
            self.kube, AppInstallResource, body, status, summary, remember=self.remember
        )

    def _remember(self, body: Body) -> None:
        if self.remember is not None:
            self.remember(body)


def _observed(plan: Plan, status: AppInstallStatus) -> Observed:
    current = plan.history.current
    return Observed(
        release_status=current.status if current else None,
        has_deployed_revision=plan.history.last_deployed is not None,
        applied_hash=status.applied_hash,
    )
