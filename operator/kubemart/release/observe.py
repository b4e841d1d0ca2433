"""observe(): every read one AppInstall reconcile needs, once, into a frozen ReleaseState.

No decision is taken here beyond "this input is missing or wrong" (a Blocker, reported as the
Ready condition) and no write is made: decide() judges what was read, and only actions write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from lightkube.resources.core_v1 import Namespace
from pydantic import BaseModel, ValidationError

from kubemart.adapters.helm import Helm
from kubemart.adapters.kube import Body, Kube, KubeError, MarketAppResource, MarketSourceResource
from kubemart.domain.bounds import ValueLimits
from kubemart.domain.catalog import entry_belongs, object_name
from kubemart.domain.durations import parse_duration
from kubemart.domain.triggers import requested_at
from kubemart.domain.values import InvalidValues, effective_values, merge_values, values_hash
from kubemart.domain.versions import InvalidConstraint, parse_constraint, resolve_version
from kubemart.models.appinstall import AppInstall, DriftMode, Phase, ValuesSourceKind
from kubemart.models.marketapp import AppVersion, MarketApp
from kubemart.models.marketsource import MarketSource
from kubemart.release import claims, ownership
from kubemart.release.dependencies import Directory, Waiting, waiting_for
from kubemart.release.fit import FitReader
from kubemart.release.live import LiveObjects
from kubemart.release.state import Blocker, Desired, Ownership, ReleaseState
from kubemart.runtime.settings import Settings
from kubemart.services.licensing import find_license
from kubemart.services.problems import Problem
from kubemart.services.tenancy import tenant_account
from kubemart.sources.charts import Charts

M = TypeVar("M", bound=BaseModel)


class Blocked(Exception):
    def __init__(self, blocker: Blocker) -> None:
        super().__init__(blocker.message)
        self.blocker = blocker


@dataclass
class Observer:
    kube: Kube
    helm: Helm
    charts: Charts
    live: LiveObjects
    settings: Settings
    claimants: Callable[[str, str], list[Body]]
    """The AppInstall bodies that claim release (target namespace, release name)."""
    fit: FitReader | None = None
    """The requirements check's reads (release.fit); None when the check is off."""
    apps: Directory | None = None
    """The AppInstall Store: the dependencies' newest bodies (release/dependencies.py)."""

    async def observe(self, app: AppInstall, body: Body) -> ReleaseState:
        meta = body["metadata"]
        spec = app.spec
        timeout = parse_duration(spec.timeout)
        cap = self.settings.max_timeout_seconds
        state = ReleaseState(
            namespace=meta["namespace"],
            name=meta["name"],
            generation=int(meta.get("generation") or 0),
            spec=spec,
            status=app.status,
            target_namespace=spec.target_namespace or meta["namespace"],
            release_name=spec.release_name or meta["name"],
            suspended=spec.suspend,
            retry_requested=_retry_requested(body, app),
            timeout_seconds=min(timeout, cap),
            timeout_capped=timeout > cap,
        )
        if state.suspended:
            return state
        try:
            return await self._gather(state, body)
        except Blocked as blocked:
            return replace(state, blocker=blocked.blocker)

    async def _gather(self, state: ReleaseState, body: Body) -> ReleaseState:
        spec = state.spec
        try:
            account = await tenant_account(
                self.kube,
                self.settings,
                requested=spec.service_account_name,
                app_namespace=state.namespace,
                target_namespace=state.target_namespace,
            )
        except Problem as problem:
            raise Blocked(_blocker(problem)) from None
        state = replace(state, account=account)
        holder = claims.holder(body, self.claimants(state.target_namespace, state.release_name))
        if holder is not None:
            return replace(state, holder=holder)
        try:
            history = await self.helm.history(state.release_name, state.target_namespace)
        except KubeError as err:
            raise Blocked(
                Blocker("ReleaseUnreadable", f"Helm's release records cannot be read: {err.message}")
            ) from err
        release = ownership.release_of(history, state.status, namespace=state.namespace, name=state.name)
        state = replace(state, release=release, owned_record=ownership.record(history))
        if release.exists and release.ownership is Ownership.FOREIGN:
            state = replace(
                state, adoption_allowed=await self._adoption_allowed(body, state.target_namespace)
            )
        source_body = await self._source(spec.source)
        source = _read(MarketSource, source_body, f"MarketSource {spec.source}")
        market_app = await self._market_app(source_body, source, spec.app)
        version = _resolve(spec.version, spec.app, market_app)
        documents = await self._value_documents(state)
        licensed, checkout, licence = True, None, None
        if market_app.spec.price is not None:
            gate = await find_license(self.kube, state.namespace, source, market_app, spec.source)
            if gate.license is not None:
                # The app can check its own licence: the verified receipt's Secret, by name.
                licence = {"secretName": gate.license.secret, "payment": gate.license.payment}
            else:
                licensed, checkout = False, gate.checkout_url
                if gate.problem:
                    state = replace(state, licence_problem=gate.problem)
        if not await self._namespace_exists(state.target_namespace):
            raise Blocked(
                Blocker(
                    "TargetNamespaceNotFound",
                    f"The target namespace {state.target_namespace} does not exist; create it or fix spec.targetNamespace.",
                )
            )
        digest = version.digest or f"unknown:{spec.source}/{spec.app}@{version.version}"
        limits = ValueLimits(
            self.settings.values_max_depth, self.settings.values_max_nodes, self.settings.values_max_bytes
        )
        try:
            # A tenant's YAML, merged, bounded and hashed: the heavy part, off the event loop.
            values, applied = await asyncio.to_thread(
                _values_and_hash, documents, spec.values, licence, digest, limits, source.spec.values
            )
        except InvalidValues as exc:
            raise Blocked(
                Blocker("InvalidValues", f"{exc}; fix it.", stalled=True, phase=Phase.FAILED)
            ) from exc
        desired = Desired(version=version, chart_digest=digest, applied_hash=applied, values=values)
        state = replace(
            state,
            source=source,
            desired=desired,
            licensed=licensed,
            checkout_url=checkout,
            chart=await self.charts.ready(source, version),
            dependencies=self._dependencies(body, market_app),
        )
        if not licensed and not release.exists:
            raise Blocked(_payment_required(state, market_app))
        if self.fit is not None:
            state = replace(state, fit=await self.fit.read(state, market_app))
        if release.exists and state.owned and release.status == "deployed":
            return await self._read_live(state)
        return state

    def _dependencies(self, body: Body, market_app: MarketApp) -> Waiting | None:
        apps = self.apps
        if apps is None:
            return None
        return waiting_for(
            body,
            apps.get,
            catalog=market_app.spec.dependencies,
            of_app=lambda ns, app: apps.bodies(apps.lookup("app_in_namespace", (ns, app))),
        )

    async def _read_live(self, state: ReleaseState) -> ReleaseState:
        """The release's objects, compared with the manifest of its current revision."""
        assert state.release.revision is not None
        spec = state.spec
        holding = spec.stopped or not state.licensed
        restore = None if holding else (state.status.stopped_replicas or None)
        mode = spec.drift_detection.mode if state.licensed else DriftMode.ENABLED
        try:
            manifest = await self.helm.manifest(
                state.release_name, state.target_namespace, state.release.revision
            )
            live = await self.live.read(
                release=state.release_name,
                namespace=state.target_namespace,
                manifest=manifest,
                mode=mode,
                stopped=holding,
                restore=restore,
                acting_as=state.account,
            )
        except KubeError as err:
            return replace(state, live_error=err.message)
        return replace(state, live=live)

    async def _adoption_allowed(self, body: Body, namespace: str) -> bool:
        asked = (body["metadata"].get("annotations") or {}).get(ownership.ADOPT_ANNOTATION) == "true"
        if not asked:
            return False
        try:
            ns = await self.kube.get(Namespace, namespace)
        except KubeError as err:
            raise Blocked(
                Blocker("ApiUnavailable", f"Reading namespace {namespace} failed: {err.message}")
            ) from err
        labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
        return labels.get(ownership.ADOPTION_LABEL) == "allowed"

    async def _source(self, name: str) -> Body:
        found = await self._get(MarketSourceResource, name)
        if found is None:
            raise Blocked(
                Blocker(
                    "SourceNotFound",
                    f"MarketSource {name} does not exist; create it or fix spec.source (kubectl get marketsources).",
                )
            )
        return found

    async def _market_app(self, source_body: Body, source: MarketSource, app: str) -> MarketApp:
        name, uid = source_body["metadata"]["name"], str(source_body["metadata"].get("uid") or "")
        found = await self._get(MarketAppResource, object_name(name, app))
        if found is None or not entry_belongs(found, source=name, source_uid=uid, app=app):
            synced = source.status.revision is not None
            impostor = found is not None
            raise Blocked(
                Blocker(
                    "AppNotFound",
                    (
                        f"MarketApp {object_name(name, app)} exists but is not the catalog entry of app {app} "
                        f"in source {name}; it is ignored. Ask an admin to remove it."
                        if impostor
                        else f"App {app} is not in the catalog of {name}; check the name with "
                        f"`kubectl get marketapps -l kubemart.io/source={name}`."
                    )
                    if synced or impostor
                    else f"MarketSource {name} has not synced yet; the app will be looked up when it has.",
                    stalled=synced or impostor,
                )
            )
        return _read(MarketApp, found, f"MarketApp {object_name(name, app)}")

    async def _value_documents(self, state: ReleaseState) -> list[tuple[str, str]]:
        """The YAML documents spec.valuesFrom names, as (where, text), in order; read only, parsed later."""
        documents: list[tuple[str, str]] = []
        for ref in state.spec.values_from:
            what = f"{ref.kind.value} {state.namespace}/{ref.name}"
            try:
                if ref.kind is ValuesSourceKind.CONFIG_MAP:
                    data = await self.kube.read_configmap_data(ref.name, state.namespace)
                else:
                    data = await self.kube.read_secret_data(ref.name, state.namespace)
            except KubeError as err:
                raise Blocked(
                    Blocker("ValuesSourceUnreadable", f"{what} cannot be read: {err.message}")
                ) from err
            if data is None or ref.key not in data:
                if ref.optional:
                    continue
                missing = what if data is None else f"key {ref.key} in {what}"
                raise Blocked(
                    Blocker(
                        "ValuesSourceNotFound",
                        f"{missing} named in spec.valuesFrom does not exist; create it or mark the entry optional.",
                    )
                )
            documents.append((f"{what} key {ref.key}", data[ref.key]))
        return documents

    async def _namespace_exists(self, name: str) -> bool:
        try:
            return await self.kube.namespace_exists(name)
        except KubeError as err:
            if err.status == 403:
                return True  # not allowed to look: let helm find out
            raise Blocked(
                Blocker("ApiUnavailable", f"Reading namespace {name} failed: {err.message}")
            ) from err

    async def _get(self, res: Any, name: str) -> Body | None:
        try:
            return await self.kube.get(res, name)
        except KubeError as err:
            raise Blocked(Blocker("ApiUnavailable", f"Reading {name} failed: {err.message}")) from err


def _values_and_hash(
    documents: list[tuple[str, str]],
    inline: dict[str, Any] | None,
    licence: dict[str, str] | None,
    digest: str,
    limits: ValueLimits,
    defaults: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """Pure and heavy: the values helm gets (source values, valuesFrom, spec.values, the licence) and
    their hash, so that a change of the source's values upgrades its apps once."""
    values = effective_values(
        documents, inline, limits=limits, defaults=defaults, defaults_from="the MarketSource's spec.values"
    )
    if licence is not None:
        values = merge_values([values, {"kubemartLicense": licence}])
    return values, values_hash(chart_digest=digest, values=values)


def _read(model: type[M], body: Body, what: str) -> M:
    """A catalog object as the model reads it; one an older operator wrote out of bounds is waited out."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Blocked(
            Blocker(
                "CatalogEntryUnreadable",
                f"{what} cannot be read ({exc.error_count()} problems, first: {exc.errors()[0]['msg']}); "
                "it is rewritten at its source's next sync.",
            )
        ) from None


def _blocker(problem: Problem) -> Blocker:
    return Blocker(
        problem.reason,
        problem.message,
        stalled=problem.stalled,
        phase=Phase(problem.phase) if problem.phase else Phase.FAILED,
    )


def _retry_requested(body: Body, app: AppInstall) -> bool:
    asked = requested_at(body)
    return asked is not None and asked != app.status.last_handled_reconcile_at


def _resolve(constraint: str | None, app: str, market_app: MarketApp) -> AppVersion:
    if constraint:
        try:
            parse_constraint(constraint)
        except InvalidConstraint as exc:
            raise Blocked(
                Blocker("InvalidVersion", f"{exc}; fix spec.version.", stalled=True, phase=Phase.FAILED)
            ) from exc
    by_version = {v.version: v for v in market_app.spec.versions}
    chosen = resolve_version(constraint, by_version)
    if chosen is None:
        known = ", ".join(list(by_version)[:8]) or "none"
        raise Blocked(
            Blocker(
                "NoMatchingVersion",
                f"No version of {app} matches {constraint or 'latest stable'} (catalog has: {known}); "
                "change spec.version, or wait for the catalog to publish one.",
                stalled=True,
                phase=Phase.FAILED,
            )
        )
    return by_version[chosen]


def _payment_required(state: ReleaseState, market_app: MarketApp) -> Blocker:
    price = market_app.spec.price
    assert price is not None
    where = f" or pay at {state.checkout_url}" if state.checkout_url else ""
    why = f" No licence can be checked now: {state.licence_problem}" if state.licence_problem else ""
    return Blocker(
        "PaymentRequired",
        f"{state.spec.app} costs {price.amount} {price.currency}: create a Payment for source {state.spec.source} and "
        f"app {state.spec.app} in namespace {state.namespace}{where}; the app installs once it is Verified.{why}",
        phase=Phase.AWAITING_PAYMENT,
    )
