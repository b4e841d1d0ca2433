"""kopf handlers: a thin shell that feeds watch events to the reconcile loops.

kopf watches, logs in, serves the health probe and posts Events; each kind's service decides
and acts in its own controller loop (runtime.controller), one reconcile per object at a time.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubemart import __version__
from kubemart.adapters.kube import Kube
from kubemart.domain.triggers import needs_reconcile
from kubemart.models.resource import GROUP, VERSION
from kubemart.runtime.controller import Controller, key_of
from kubemart.runtime.settings import Settings
from kubemart.services.catalog_sync import CatalogSync


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
    memo.catalog = CatalogSync(kube, cfg)
    memo.sources = Controller("marketsource", memo.catalog.reconcile)
    logger.info("kubemart operator %s started", __version__)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    await memo.sources.close()
    await memo.kube.close()
    logger.info("kubemart operator stopped")


@kopf.on.event(GROUP, VERSION, "marketsources")
def marketsource_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj: dict[str, Any] = dict(event["object"])
    if event["type"] == "DELETED":
        memo.sources.forget(key_of(obj))
        return
    memo.sources.observe(obj, wake=needs_reconcile(obj))
