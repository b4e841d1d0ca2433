"""kopf handlers: a thin shell that feeds watch events to the reconcile loops.

kopf watches, logs in and serves the health probe; each kind's reconcile runs in its own
controller loop (runtime.controller), one reconcile per object at a time. Everything is built in
app.py; a handler only says which objects an event concerns, through declared indexes.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubemart import __version__
from kubemart.adapters.kube import Kube
from kubemart.app import App
from kubemart.domain.triggers import requested_at
from kubemart.domain.upload_storage import UPLOAD_LABEL, UPLOAD_LABEL_VALUE
from kubemart.models.resource import GROUP, VERSION
from kubemart.release import claims
from kubemart.runtime import kopf_bounds, metrics
from kubemart.runtime.controller import key_of

WATCH_LABEL = {"kubemart.io/watch": "true"}
"""ConfigMaps and Secrets named in valuesFrom opt in to being watched with this label; others are read
at each reconcile (Flux's reconcile.fluxcd.io/watch works the same way)."""


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    # Events are posted explicitly by the services; kopf's own log lines stay out of them.
    settings.posting.level = logging.CRITICAL
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 5, 10, 20]
    # Filtered by the API server: the cluster's other ConfigMaps and Secrets (helm's release records
    # among them) never reach the operator. Uploaded charts carry kubemart.io/watch=upload.
    settings.watching.label_selectors["v1", "configmaps"] = "kubemart.io/watch=true"
    settings.watching.label_selectors["v1", "secrets"] = "kubemart.io/watch in (true,upload)"
    kopf_bounds.apply(settings)  # no deep copy of each object at each event (we have no change handlers)
    try:
        app = App.build(
            memo.settings, Kube.from_environment(), namespaces=list(memo.get("namespaces") or []) or None
        )
        memo.app = app
        await app.start(webhook_socket=memo.get("webhook_socket"), metrics_socket=memo.get("metrics_socket"))
    except Exception as exc:
        # Not worth retrying every minute (kopf's default): the operator exits and says why, once.
        raise kopf.PermanentError(f"the operator could not start: {type(exc).__name__}: {exc}") from exc
    logger.info("kubemart operator %s started", __version__)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    app: App | None = memo.get("app")
    if app is not None:
        await app.close()
    if memo.get("step_down") is not None:
        await memo.step_down()  # nothing of ours runs now: the next leader may start at once
    if memo.get("stop_flag") is not None:
        memo.stop_flag.set()  # kopf's waiter on it ends now, so the Lease is released at once
    logger.info("kubemart operator stopped")


@kopf.on.event(GROUP, VERSION, "marketsources")
async def marketsource_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    app: App = memo.app
    obj: dict[str, Any] = dict(event["object"])
    key = key_of(obj)
    # A new key, gateway or deletion: its Payments look again (the ones stalled on a bad key, too).
    app.pays.wake(app.payments.source_changed(obj, deleted=event["type"] == "DELETED"))
    if event["type"] == "DELETED":
        app.sources.forget(key)
        app.catalog.forget(key)
        return
    app.apps.wake(app.apps_of_changed_source(obj))  # before observe() records the new body
    running = app.sources.reconciling(key)
    if running is not None and (
        obj["metadata"].get("generation") != running["metadata"].get("generation")
        or requested_at(obj) != requested_at(running)
    ):
        # A corrected spec or a retry request does not wait for a slow repository: start over.
        app.sources.cancel_current(key)
    app.sources.observe(obj)


@kopf.on.event(GROUP, VERSION, "appinstalls")
async def appinstall_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    app: App = memo.app
    obj: dict[str, Any] = dict(event["object"])
    key = key_of(obj)
    if event["type"] == "DELETED":
        app.counts.install_gone(key)
        app.apps.forget(key)
        # A release this object held may now be free for a rival that was refused it.
        app.apps.wake(app.apps_claiming(*claims.release_of(obj)))
        return
    running = app.apps.reconciling(key)
    if running is not None:
        meta, was = obj["metadata"], running["metadata"]
        changed = meta.get("deletionTimestamp") or meta.get("generation") != was.get("generation")
        # Cancel: a newer spec or a deletion stops the operation in flight instead of waiting for it.
        # Once the operation in flight is the deletion's own (its body is being deleted), nothing
        # newer can come, and cancelling it would only restart the uninstall.
        if changed and not was.get("deletionTimestamp"):
            app.apps.cancel_current(key)
    app.counts.install_seen(key, obj)
    app.apps.observe(obj)


@kopf.on.event(GROUP, VERSION, "payments")
async def payment_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    app: App = memo.app
    obj: dict[str, Any] = dict(event["object"])
    spec = obj.get("spec") or {}
    # A Payment that changed may unlock, or revoke, the AppInstalls of its app in its namespace.
    namespace = obj["metadata"].get("namespace") or ""
    app.apps.wake(app.apps_paid_by(namespace, str(spec.get("source")), str(spec.get("app"))))
    if event["type"] == "DELETED":
        app.pays.forget(key_of(obj))
        app.payments.forget(key_of(obj))
        return
    app.pays.observe(obj)


@kopf.on.event(GROUP, VERSION, "marketapps")
async def marketapp_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A catalog entry changed: the AppInstalls of that app may resolve to another version."""
    app: App = memo.app
    # Only a status write (install counts): the AppInstalls of the app have nothing new to read.
    if not app.counts.app_event(dict(event["object"]), deleted=event["type"] == "DELETED"):
        return
    if event["type"] == "DELETED":
        # Deleted by anyone but the sync itself: its source restores it, index changed or not.
        source = app.catalog.app_deleted(dict(event["object"]))
        if source is not None:
            app.sources.wake([("", source)])
    spec = event["object"].get("spec") or {}
    app.apps.wake(app.apps_of_app(str(spec.get("source")), str(spec.get("app"))))


@kopf.on.event(GROUP, VERSION, "notificationsinks")
async def notificationsink_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    app: App = memo.app
    obj: dict[str, Any] = dict(event["object"])
    if event["type"] == "DELETED":
        app.sinks.forget(key_of(obj))
        app.notifier.forget(key_of(obj))
        return
    app.sinks.observe(obj)


def _values_event(kind: str, event: kopf.RawEvent, memo: kopf.Memo) -> None:
    app: App = memo.app
    metrics.WATCHED_VALUES_EVENTS.labels(kind).inc()
    meta = event["object"].get("metadata") or {}
    app.apps.wake(app.apps_reading(meta.get("namespace") or "", kind, meta.get("name") or ""))


@kopf.on.event("v1", "configmaps", labels=WATCH_LABEL)
async def configmap_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A watched ConfigMap changed: the apps that read it recompute their values."""
    _values_event("ConfigMap", event, memo)


@kopf.on.event("v1", "secrets", labels=WATCH_LABEL)
async def secret_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A watched Secret changed: the apps that read it recompute their values, the Payments of a
    gateway whose Secret it is read it again."""
    _values_event("Secret", event, memo)
    app: App = memo.app
    meta = event["object"].get("metadata") or {}
    app.pays.wake(app.payments.secret_changed(meta.get("namespace", ""), meta.get("name", "")))
    app.sinks.wake(app.sinks.store.lookup("secret", (meta.get("namespace"), meta.get("name"))))


@kopf.on.event("v1", "secrets", labels={UPLOAD_LABEL: UPLOAD_LABEL_VALUE})
async def uploaded_chart_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A chart was uploaded, replaced or deleted: the upload sources reading its namespace sync now,
    not at their interval (their sync is one cheap list when nothing they hold changed)."""
    app: App = memo.app
    meta = event["object"].get("metadata") or {}
    app.sources.wake(app.sources_storing(str(meta.get("namespace") or "")))
