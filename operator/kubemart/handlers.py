"""kopf handlers: a thin shell that feeds watch events to the reconcile loops.

kopf watches, logs in, serves the health probe and posts Events; each kind's service decides
and acts in its own controller loop (runtime.controller), one reconcile per object at a time.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubemart import __version__
from kubemart.adapters.helm import Helm
from kubemart.adapters.kube import Kube, MarketSourceResource
from kubemart.domain.triggers import needs_reconcile
from kubemart.models.resource import GROUP, VERSION
from kubemart.runtime import metrics
from kubemart.runtime.controller import Controller, key_of
from kubemart.runtime.http_server import RuntimeServer
from kubemart.runtime.settings import Settings
from kubemart.services.appinstall import AppInstalls
from kubemart.services.catalog_sync import CatalogSync
from kubemart.services.drift_watch import DriftWatcher
from kubemart.services.events import EventRecorder
from kubemart.services.payments import Payments
from kubemart.services.runtime_view import RuntimeView
from kubemart.services.webhook_server import WebhookServer


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    # Events are posted explicitly by the services; kopf's own log lines stay out of them.
    settings.posting.level = logging.CRITICAL
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 5, 10, 20]
    cfg = Settings()
    kube = Kube.from_environment()
    memo.settings = cfg
    memo.kube = kube
    memo.events = EventRecorder(kube)
    memo.catalog = CatalogSync(kube, cfg, memo.events)
    memo.sources = Controller("marketsource", memo.catalog.reconcile, needs=needs_reconcile)
    memo.catalog.remember = memo.sources.record
    memo.helm = Helm(kube, executable=cfg.helm_binary, max_concurrent=cfg.max_concurrent_helm)
    memo.installs = AppInstalls(kube, memo.helm, cfg, memo.events)
    memo.apps = Controller("appinstall", memo.installs.reconcile, needs=needs_reconcile)
    memo.installs.claims = lambda: list(memo.apps.latest().values())
    memo.installs.remember = memo.apps.record
    metrics.count_apps(lambda: memo.apps.latest().values())
    memo.payments = Payments(kube, cfg, memo.events)
    memo.pays = Controller("payment", memo.payments.reconcile, needs=needs_reconcile)
    memo.payments.remember = memo.pays.record
    memo.webhooks = WebhookServer(lambda session: _webhook_secrets(memo, session), memo.pays.wake)
    if cfg.webhook_port:
        await memo.webhooks.start(cfg.webhook_port)
    memo.drift = DriftWatcher(
        kube,
        lambda ns, release: memo.apps.wake(_owners(memo, ns, release)),
        namespaces=list(memo.get("namespaces") or []) or None,
    )
    memo.drift.start()
    # Any kind a release holds (custom resources, RBAC) is watched from the first time it is read.
    memo.installs.corrector.watch_kind = memo.drift.ensure
    view = RuntimeView(memo.sources, memo.apps, memo.pays, memo.helm, memo.drift, memo.webhooks)
    memo.runtime = RuntimeServer(view.state)
    if cfg.metrics_port:
        await memo.runtime.start(cfg.metrics_port)
    logger.info("kubemart operator %s started", __version__)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    await memo.runtime.close()
    await memo.sources.close()
    await memo.drift.close()
    await memo.webhooks.close()
    await memo.apps.close()
    await memo.pays.close()
    await memo.events.close()
    await memo.kube.close()
    if memo.get("stop_flag") is not None:
        memo.stop_flag.set()  # kopf's waiter on it ends now, so the Lease is released at once
    logger.info("kubemart operator stopped")


@kopf.on.event(GROUP, VERSION, "marketsources")
async def marketsource_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj: dict[str, Any] = dict(event["object"])
    if event["type"] == "DELETED":
        memo.sources.forget(key_of(obj))
        return
    memo.sources.observe(obj)


@kopf.on.event(GROUP, VERSION, "appinstalls")
async def appinstall_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj: dict[str, Any] = dict(event["object"])
    if event["type"] == "DELETED":
        memo.apps.forget(key_of(obj))
        memo.installs.forget(key_of(obj))
        # A release this object held may now be free for a rival that was refused it.
        memo.apps.wake(k for k, b in memo.apps.latest().items() if _reason(b) == "ReleaseConflict")
        return
    key = key_of(obj)
    running = memo.apps.reconciling(key)
    if running is not None:
        meta, was = obj["metadata"], running["metadata"]
        changed = meta.get("deletionTimestamp") or meta.get("generation") != was.get("generation")
        # Cancel: a newer spec or a deletion stops the operation in flight instead of waiting for it.
        # Once the operation in flight is the deletion's own (its body is being deleted), nothing
        # newer can come, and cancelling it would only restart the uninstall.
        if changed and not was.get("deletionTimestamp"):
            memo.apps.cancel_current(key)
    memo.apps.observe(obj)


async def _webhook_secrets(memo: kopf.Memo, session: str) -> list[tuple[object, bytes]]:
    """The Payments following `session`, each with its source's webhook secret."""
    out: list[tuple[object, bytes]] = []
    for key, body in memo.pays.latest().items():
        if (body.get("status") or {}).get("sessionID") != session:
            continue
        source = await memo.kube.get(MarketSourceResource, (body.get("spec") or {}).get("source", ""))
        ref = (((source or {}).get("spec") or {}).get("payment") or {}).get("secretRef") or {}
        data = (
            await memo.kube.read_secret_data(ref.get("name", ""), ref.get("namespace", "")) if ref else None
        )
        if data and data.get("webhookSecret"):
            out.append((key, data["webhookSecret"].encode()))
    return out


def _owners(memo: kopf.Memo, namespace: str, release: str) -> list[tuple[str, str]]:
    """The AppInstalls whose release is `release` in `namespace`."""
    out = []
    for key, body in memo.apps.latest().items():
        spec = body.get("spec") or {}
        if (spec.get("targetNamespace") or key[0], spec.get("releaseName") or key[1]) == (namespace, release):
            out.append(key)
    return out


@kopf.on.event(GROUP, VERSION, "payments")
async def payment_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj: dict[str, Any] = dict(event["object"])
    spec = obj.get("spec") or {}
    namespace = obj["metadata"].get("namespace")
    # A Payment that changed may unlock, or revoke, the AppInstalls of its app in its namespace.
    memo.apps.wake(
        k
        for k, b in memo.apps.latest().items()
        if k[0] == namespace
        and ((b.get("spec") or {}).get("source"), (b.get("spec") or {}).get("app"))
        == (spec.get("source"), spec.get("app"))
    )
    if event["type"] == "DELETED":
        memo.pays.forget(key_of(obj))
        return
    memo.pays.observe(obj)


@kopf.on.event(GROUP, VERSION, "marketapps")
async def marketapp_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A catalog entry changed: the AppInstalls of that app may resolve to another version."""
    spec = event["object"].get("spec") or {}
    wanted = (spec.get("source"), spec.get("app"))
    memo.apps.wake(
        k
        for k, b in memo.apps.latest().items()
        if ((b.get("spec") or {}).get("source"), (b.get("spec") or {}).get("app")) == wanted
    )


def _values_event(kind: str, event: kopf.RawEvent, memo: kopf.Memo) -> None:
    meta = event["object"].get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    memo.apps.wake(
        k
        for k, b in memo.apps.latest().items()
        if k[0] == namespace
        and any(
            r.get("kind") == kind and r.get("name") == name
            for r in (b.get("spec") or {}).get("valuesFrom") or []
        )
    )


@kopf.on.event("v1", "configmaps")
async def configmap_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A ConfigMap named in some valuesFrom changed: its apps recompute their values."""
    _values_event("ConfigMap", event, memo)


@kopf.on.event("v1", "secrets")
async def secret_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A Secret named in some valuesFrom changed: its apps recompute their values."""
    _values_event("Secret", event, memo)


def _reason(body: dict[str, Any]) -> str | None:
    for c in (body.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("reason"))
    return None
