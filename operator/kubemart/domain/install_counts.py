"""Install counts of MarketApps: a tally of AppInstalls by the MarketApp they name (pure).

Fed with every AppInstall body the watch delivers and every MarketApp it sees, the tally knows, for
each MarketApp, how many AppInstalls name it (`total`) and how many of those are Running, and what
the MarketApp's status shows now. `due` says which MarketApps show other numbers than the tally:
those, and only those, need a status write. Counts are derived data: after a restart the tally is
built again from the AppInstalls listed, and a MarketApp whose status already shows them is not
written. A MarketApp that shows no counts is taken to show zero.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubemart.domain.catalog import object_name

Key = tuple[str, str]
"""An AppInstall: (namespace, name)."""


@dataclass(frozen=True)
class Installs:
    total: int = 0
    running: int = 0

    def wire(self) -> dict[str, int]:
        return {"total": self.total, "running": self.running}

    @classmethod
    def shown_by(cls, marketapp: Mapping[str, Any]) -> Installs | None:
        """What a MarketApp's status shows; None when it shows nothing (or something malformed)."""
        shown = (marketapp.get("status") or {}).get("installs")
        if not isinstance(shown, Mapping):
            return None
        total, running = shown.get("total"), shown.get("running")
        if not isinstance(total, int) or not isinstance(running, int):
            return None
        return cls(total, running)


def counted_as(body: Mapping[str, Any]) -> tuple[str, bool] | None:
    """The MarketApp an AppInstall counts for, and whether it counts as running; None if it names none."""
    spec = body.get("spec") or {}
    source, app = spec.get("source"), spec.get("app")
    if not isinstance(source, str) or not isinstance(app, str) or not source or not app:
        return None
    return object_name(source, app), (body.get("status") or {}).get("phase") == "Running"


def _rv(meta: Mapping[str, Any]) -> int:
    try:
        return int(meta.get("resourceVersion") or 0)
    except ValueError:
        return 0


class InstallTally:
    def __init__(self) -> None:
        self._of: dict[Key, tuple[str, bool]] = {}
        self._totals: dict[str, int] = {}
        self._running: dict[str, int] = {}
        self._shown: dict[str, tuple[Installs | None, int]] = {}
        """The MarketApps that exist: what their status shows, at which resourceVersion."""
        self._dirty: set[str] = set()
        self._gone: set[Key] | None = None
        """While a start-up list is read: the AppInstalls deleted meanwhile (the list must not bring them back)."""

    # --- AppInstalls ---------------------------------------------------------------------------

    def put(self, key: Key, body: Mapping[str, Any]) -> bool:
        """Count `body` (the newest of AppInstall `key`); True if a MarketApp's numbers changed."""
        new = counted_as(body)
        old = self._of.get(key)
        if new == old:
            return False
        self._uncount(key)
        if new is not None:
            name, running = new
            self._of[key] = new
            self._totals[name] = self._totals.get(name, 0) + 1
            self._running[name] = self._running.get(name, 0) + running
            self._dirty.add(name)
        return True

    def drop(self, key: Key) -> bool:
        """AppInstall `key` is gone; True if it was counted."""
        if self._gone is not None:
            self._gone.add(key)
        return self._uncount(key)

    def _uncount(self, key: Key) -> bool:
        old = self._of.pop(key, None)
        if old is None:
            return False
        name, running = old
        self._totals[name] -= 1
        self._running[name] -= running
        if not self._totals[name]:
            del self._totals[name], self._running[name]
        self._dirty.add(name)
        return True

    def begin_listing(self) -> None:
        """A start-up list of all AppInstalls is being read while the watch goes on."""
        self._gone = set()

    def listed(self, bodies: Iterable[Mapping[str, Any]]) -> None:
        """Count what the start-up list holds; the watch has the newer word on what it delivered already,
        and an AppInstall it said was deleted since the list began is not brought back."""
        gone, self._gone = self._gone or set(), None
        for body in bodies:
            meta = body.get("metadata") or {}
            key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            if key not in self._of and key not in gone:
                self.put(key, body)

    def counts(self, name: str) -> Installs:
        return Installs(self._totals.get(name, 0), self._running.get(name, 0))

    # --- MarketApps ----------------------------------------------------------------------------

    def app_seen(self, body: Mapping[str, Any]) -> None:
        """A MarketApp exists with this body (a watch event, or the answer to our own write)."""
        meta = body.get("metadata") or {}
        name, rv = str(meta.get("name") or ""), _rv(meta)
        known = self._shown.get(name)
        if known is not None and rv and rv < known[1]:
            return  # an older event than what our own write returned
        shown = Installs.shown_by(body)
        self._shown[name] = (shown, rv)
        if known is None or known[0] != shown:
            self._dirty.add(name)

    def app_gone(self, name: str) -> None:
        self._shown.pop(name, None)
        self._dirty.discard(name)

    def due(self) -> dict[str, Installs]:
        """The MarketApps whose status shows other numbers than the tally; they leave the dirty set
        (a failed write puts its app back with `retry`)."""
        out: dict[str, Installs] = {}
        for name in self._dirty:
            known = self._shown.get(name)
            if known is None:
                continue  # no such MarketApp (yet): counted, written once it appears
            now = self.counts(name)
            # No counts shown means none: a new catalog of thousands of apps costs no write.
            if (known[0] or Installs()) != now:
                out[name] = now
        self._dirty.clear()
        return out

    def retry(self, name: str) -> None:
        self._dirty.add(name)

    def pending(self) -> bool:
        return bool(self._dirty)


def generation_key(body: Mapping[str, Any]) -> Hashable:
    """What of a MarketApp its AppInstalls read beyond its status: its identity, spec and controller.

    A change of status only (install counts written) leaves this the same, so it wakes nobody.
    """
    meta = body.get("metadata") or {}
    owners = tuple((str(r.get("uid")), bool(r.get("controller"))) for r in meta.get("ownerReferences") or [])
    return (meta.get("uid"), meta.get("generation"), owners)
