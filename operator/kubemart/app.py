"""The composition root: every part of the operator, built once and wired with types.

`App.build` makes no request and starts nothing; `start` opens what listens and watches;
`close` stops it all. handlers.py only passes watch events to the parts built here.
"""

from __future__ import annotations

import socket
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from kubemart.adapters.helm import Helm
from kubemart.adapters.kube import Body, Kube
from kubemart.adapters.receiver import Receivers
from kubemart.catalog.sync import CatalogSync
from kubemart.domain.capacity import INSUFFICIENT
from kubemart.domain.triggers import needs_reconcile
from kubemart.release import claims, dependencies
from kubemart.release.live import LiveObjects
from kubemart.release.reconcile import ReleaseEngine
from kubemart.runtime import metrics
from kubemart.runtime.bounded_http import limits_from
from kubemart.runtime.controller import Controller, Key
from kubemart.runtime.http_server import RuntimeServer
from kubemart.runtime.index import Index, Store
from kubemart.runtime.settings import Settings
from kubemart.services.capacity import CapacityWatch
from kubemart.services.correction import Corrector
from kubemart.services.drift_watch import DriftWatcher
from kubemart.services.events import EventRecorder
from kubemart.services.install_counts import InstallCounts
from kubemart.services.notify import Notifier
from kubemart.services.payments import Payments
from kubemart.services.runtime_view import RuntimeView
from kubemart.services.sinks import Sinks
from kubemart.services.webhook_server import WebhookServer
from kubemart.sources.charts import Charts


def app_indexes() -> dict[str, Index]:
    """The look-ups events need into AppInstalls (runtime.index)."""

    def spec(body: dict[str, Any]) -> dict[str, Any]:
        return body.get("spec") or {}

    def namespace(body: dict[str, Any]) -> str:
        return str((body.get("metadata") or {}).get("namespace") or "")

    def values(body: dict[str, Any]) -> Iterable[Hashable]:
        return [(namespace(body), r.get("kind"), r.get("name")) for r in spec(body).get("valuesFrom") or []]

    def unfit(body: dict[str, Any]) -> list[Hashable]:
        # Waiting for capacity: woken when the capacity watch sees it grow (services.capacity).
        conditions = (body.get("status") or {}).get("conditions") or []
        waiting = any(c.get("type") == "Ready" and c.get("reason") == INSUFFICIENT for c in conditions)
        return [True] if waiting else []

    return {
        "unfit": Index(unfit),
        "release": Index(lambda b: [claims.release_of(b)]),
        "app": Index(lambda b: [(spec(b).get("source"), spec(b).get("app"))]),
        "source": Index(lambda b: [spec(b).get("source")]),
        "paid": Index(lambda b: [(namespace(b), spec(b).get("source"), spec(b).get("app"))]),
        "values": Index(values),
        # Dependencies (release/dependencies.py): who names X in dependsOn, the AppInstalls of an app in
        # a namespace (catalog dependencies), and the namespaces where some wait for a dependency.
        "dependents": Index(dependencies.edges),
        "app_in_namespace": Index(lambda b: [(namespace(b), spec(b).get("app"))]),
        "waiting": Index(dependencies.waiting_namespace),
    }


def source_indexes() -> dict[str, Index]:
    """The look-ups events need into MarketSources: the upload sources by the namespace they read."""

    def upload_namespace(body: dict[str, Any]) -> list[Hashable]:
        spec = body.get("spec") or {}
        storage = spec.get("upload") or {}
        return [storage["namespace"]] if spec.get("type") == "upload" and storage.get("namespace") else []

    return {"upload": Index(upload_namespace)}


def sink_indexes() -> dict[str, Index]:
    """NotificationSinks by the Secret they read, so a labelled Secret's change wakes them."""

    def secret(body: dict[str, Any]) -> list[Hashable]:
        ref = (body.get("spec") or {}).get("secretRef") or {}
        return [((body.get("metadata") or {}).get("namespace"), ref["name"])] if ref.get("name") else []

    return {"secret": Index(secret)}


@dataclass
class App:
    settings: Settings
    kube: Kube
    events: EventRecorder
    catalog: CatalogSync
    sources: Controller
    helm: Helm
    engine: ReleaseEngine
    apps: Controller
    payments: Payments
    pays: Controller
    webhooks: WebhookServer
    drift: DriftWatcher
    runtime: RuntimeServer
    notifier: Notifier
    sinks: Controller
    counts: InstallCounts
    capacity: CapacityWatch | None = None

    @classmethod
    def build(cls, settings: Settings, kube: Kube, *, namespaces: list[str] | None = None) -> App:
        receivers = Receivers(timeout=settings.notify_timeout, allow_private=settings.notify_allow_private)
        notifier = Notifier(kube, settings, receivers)
        events = EventRecorder(kube, notify=notifier.publish)
        sink_store = Store(sink_indexes())
        sink_reconciler = Sinks(kube, settings, notifier, receivers, events, remember=sink_store.record)
        sinks = Controller(
            "notificationsink", sink_reconciler.reconcile, needs=needs_reconcile, store=sink_store
        )
        source_store = Store(source_indexes())
        catalog = CatalogSync(kube, settings, events, remember=source_store.record)
        sources = Controller("marketsource", catalog.reconcile, needs=needs_reconcile, store=source_store)
        helm = Helm(
            kube,
            executable=settings.helm_binary,
            max_concurrent=settings.max_concurrent_helm,
            per_tenant=settings.helm_per_namespace,
        )
        # A dependency's change (its readiness, its creation or deletion) wakes its dependents.
        app_store = Store(app_indexes(), on_change=lambda old, new: apps.wake(wakes.changed(old, new)))
        wakes = dependencies.Wakes(app_store)

        def claimants(namespace: str, release: str) -> list[Body]:
            return app_store.bodies(app_store.lookup("release", (namespace, release)))

        drift = DriftWatcher(
            kube,
            lambda ns, release: apps.wake(app_store.lookup("release", (ns, release))),
            namespaces=namespaces,
        )
        capacity = (
            CapacityWatch(
                kube,
                lambda: apps.wake(app_store.lookup("unfit", True)),
                wake_interval=settings.capacity_wake_interval,
            )
            if settings.check_requirements
            else None
        )
        engine = ReleaseEngine(
            kube=kube,
            helm=helm,
            charts=Charts(kube, settings.chart_cache_dir, settings),
            # Any kind a release holds (custom resources, RBAC) is watched from the first time it is read.
            live=LiveObjects(Corrector(kube, helm, watch_kind=drift.ensure)),
            settings=settings,
            events=events,
            claimants=claimants,
            remember=app_store.record,
            capacity=capacity,
            apps=app_store,
        )
        apps = Controller(
            "appinstall", engine.reconcile, needs=needs_reconcile, on_error=engine.on_error, store=app_store
        )
        pay_store = Store()
        payments = Payments(kube, settings, events, remember=pay_store.record)
        pays = Controller("payment", payments.reconcile, needs=needs_reconcile, store=pay_store)
        webhooks = WebhookServer(payments.webhook_secrets, pays.wake)
        view = RuntimeView(sources, apps, pays, helm, drift, webhooks)
        metrics.count_apps(lambda: app_store.all().values())
        return cls(
            settings=settings,
            kube=kube,
            events=events,
            catalog=catalog,
            sources=sources,
            helm=helm,
            engine=engine,
            apps=apps,
            payments=payments,
            pays=pays,
            webhooks=webhooks,
            drift=drift,
            runtime=RuntimeServer(view.state),
            notifier=notifier,
            sinks=sinks,
            counts=InstallCounts(kube, interval=settings.install_counts_interval, namespaces=namespaces),
            capacity=capacity,
        )

    async def start(
        self, *, webhook_socket: socket.socket | None, metrics_socket: socket.socket | None
    ) -> None:
        """Serve on the sockets cli.py bound, or (a leader elected after start-up) bind the ports now."""
        cfg, limits = self.settings, limits_from(self.settings)
        if webhook_socket is not None:
            await self.webhooks.start_on(webhook_socket, limits)
        elif cfg.webhook_port:
            await self.webhooks.start(cfg.webhook_port, host=cfg.webhook_bind_address, limits=limits)
        self.drift.start()
        self.notifier.start()
        self.counts.start()
        if self.capacity is not None:
            self.capacity.start()
        if metrics_socket is not None:
            await self.runtime.start_on(metrics_socket, limits)
        elif cfg.metrics_port:
            await self.runtime.start(cfg.metrics_port, host=cfg.metrics_bind_address, limits=limits)

    async def close(self) -> None:
        await self.runtime.close()
        await self.sources.close()
        await self.drift.close()
        if self.capacity is not None:
            await self.capacity.close()
        await self.webhooks.close()
        await self.apps.close()
        await self.counts.close()
        await self.pays.close()
        await self.sinks.close()
        await self.events.close()
        await self.notifier.close()  # after the last Events: their final counts are written
        await self.kube.close()

    # --- what events concern -------------------------------------------------------------------

    def apps_of_app(self, source: str, app: str) -> set[Key]:
        return self.apps.store.lookup("app", (source, app))

    def apps_of_changed_source(self, body: Body) -> set[Key]:
        """The AppInstalls of a MarketSource whose spec changed since last seen (verify, values, secretRef
        decide whether and what they install: one Stalled on VerificationFailed may go on)."""
        meta = body.get("metadata") or {}
        known = self.sources.store.get(("", str(meta.get("name"))))
        if known is None or known["metadata"].get("generation") == meta.get("generation"):
            return set()
        return self.apps.store.lookup("source", meta.get("name"))

    def apps_paid_by(self, namespace: str, source: str, app: str) -> set[Key]:
        return self.apps.store.lookup("paid", (namespace, source, app))

    def apps_reading(self, namespace: str, kind: str, name: str) -> set[Key]:
        return self.apps.store.lookup("values", (namespace, kind, name))

    def sources_storing(self, namespace: str) -> set[Key]:
        return self.sources.store.lookup("upload", namespace)

    def apps_claiming(self, namespace: str, release: str) -> set[Key]:
        return self.apps.store.lookup("release", (namespace, release))
