"""Declared look-ups: from what an event names to the objects it concerns, without scanning them all.

A handler that hears "ConfigMap team-a/settings changed" asks the AppInstall index "values" for the
apps that name it, rather than looking at every AppInstall. Each index says, for one body, under
which keys it is found; the controller keeps the indexes up to date as bodies come and go.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

Key = tuple[str, str]
KeysOf = Callable[[dict[str, Any]], Iterable[Hashable]]
OnChange = Callable[[dict[str, Any] | None, dict[str, Any] | None], None]
"""Told (old body, new body; None: absent) each time a body is recorded or forgotten."""


class Index:
    def __init__(self, keys_of: KeysOf) -> None:
        self._keys_of = keys_of
        self._by: defaultdict[Hashable, set[Key]] = defaultdict(set)
        self._of: dict[Key, tuple[Hashable, ...]] = {}

    def put(self, key: Key, body: dict[str, Any]) -> None:
        new = tuple(dict.fromkeys(self._keys_of(body)))
        old = self._of.get(key, ())
        if new == old:
            return
        self._drop(key, old)
        for k in new:
            self._by[k].add(key)
        self._of[key] = new

    def drop(self, key: Key) -> None:
        self._drop(key, self._of.pop(key, ()))

    def _drop(self, key: Key, keys: tuple[Hashable, ...]) -> None:
        for k in keys:
            found = self._by.get(k)
            if found is not None:
                found.discard(key)
                if not found:
                    del self._by[k]

    def get(self, index_key: Hashable) -> set[Key]:
        return set(self._by.get(index_key, ()))

    def __len__(self) -> int:
        return len(self._of)


class Store:
    """The newest body of each object of one kind, with its declared indexes kept up to date.

    Shared by a kind's controller (which feeds it from watch events) and its reconcile (which
    feeds it what it writes, and looks things up in it), so neither needs the other.
    """

    def __init__(self, indexes: dict[str, Index] | None = None, *, on_change: OnChange | None = None) -> None:
        self.indexes = indexes or {}
        self._bodies: dict[Key, dict[str, Any]] = {}
        self.on_record: Callable[[Key], None] | None = None
        """Told of every body recorded as the newest (the controller, to look at it again)."""
        self._on_change = on_change

    def record(self, body: dict[str, Any]) -> bool:
        """Keep `body` as the newest unless it is not newer than the one known; False if so.

        A reconcile feeds back what it wrote, so that the next reconcile never works from a body
        older than its own last write (the watch event for that write may still be on its way).
        """
        meta = body.get("metadata", {})
        key = (meta.get("namespace") or "", meta["name"])
        known = self._bodies.get(key)
        if known is not None and _rv(known) >= _rv(body):
            return False  # older, or the echo of a write already recorded
        self._bodies[key] = body
        for index in self.indexes.values():
            index.put(key, body)
        if self.on_record is not None:
            self.on_record(key)
        if self._on_change is not None:
            self._on_change(known, body)
        return True

    def forget(self, key: Key) -> None:
        known = self._bodies.pop(key, None)
        for index in self.indexes.values():
            index.drop(key)
        if self._on_change is not None and known is not None:
            self._on_change(known, None)

    def get(self, key: Key) -> dict[str, Any] | None:
        return self._bodies.get(key)

    def lookup(self, index: str, index_key: Hashable) -> set[Key]:
        """The objects a declared index files under `index_key`."""
        return self.indexes[index].get(index_key)

    def bodies(self, keys: Iterable[Key]) -> list[dict[str, Any]]:
        return [b for k in keys if (b := self._bodies.get(k)) is not None]

    def all(self) -> dict[Key, dict[str, Any]]:
        return dict(self._bodies)

    def __len__(self) -> int:
        return len(self._bodies)


def _rv(body: dict[str, Any]) -> int:
    # resourceVersions are opaque, but etcd-backed servers issue increasing integers.
    try:
        return int(body.get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0
