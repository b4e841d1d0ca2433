"""What kopf does per watch event that a hostile object would make costly, turned off where unused.

kopf builds each object's "essence" at every watch event, a deep copy of the whole body, so that
change handlers (on.create/update/field) can be told what changed. The operator registers only event
handlers (handlers.py feeds its own reconcile loops), so the essence is never read; building it anyway
deep-copies a tenant's spec.values on the event loop at every event, recursing once per level of
nesting (two frames a level: an AppInstall nested as deep as the API server allows, 10,000 levels,
made kopf throttle the object with a RecursionError and a traceback, again at each event).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """An empty essence, never stored: for operators with no change handlers."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def apply(settings: kopf.OperatorSettings, registry: kopf.OperatorRegistry | None = None) -> bool:
    """Turn the essence off, unless change handlers are registered (they need it); True if turned off."""
    registry = registry or kopf.get_default_registry()
    if registry._changing.get_all_handlers():  # kopf has no public way to ask
        return False
    settings.persistence.diffbase_storage = NoDiffBase()
    return True
