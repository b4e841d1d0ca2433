"""What an AppInstall waits for among other AppInstalls before it installs or upgrades (pure).

Two kinds of edge: `spec.dependsOn` names AppInstalls (Flux's HelmRelease dependsOn), and the
catalog's dependencies (MarketApp.spec.dependencies, type application and mandatory: the
`kubemart.io/dependencies` chart annotation, an Olares manifest) name apps, found as AppInstalls of
that app in the same namespace. A dependency counts once it is Ready at its current generation
(Ready=True and status.observedGeneration == metadata.generation). Everything here works on bodies
the AppInstall Store already holds: no read, no write (docs/dependencies.md).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubemart.domain.versions import InvalidConstraint, parse_constraint
from kubemart.models.marketapp import Dependency

Key = tuple[str, str]
Body = Mapping[str, Any]
Lookup = Callable[[Key], Body | None]

MAX_WALK = 2000
"""AppInstalls visited looking for a cycle: a bound on the work one reconcile does."""
DELETION_POLICY = "kubemart.io/deletion-policy"
IGNORE_DEPENDENTS = "ignore-dependents"
"""The deletion policy that uninstalls at once although other AppInstalls depend on this one."""


class Directory(Protocol):
    """The AppInstall Store (runtime.index.Store), as far as dependencies read it."""

    def get(self, key: Key) -> dict[str, Any] | None: ...
    def lookup(self, index: str, index_key: Hashable) -> set[Key]: ...
    def bodies(self, keys: Iterable[Key]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Waiting:
    """Why installs and upgrades wait, as the Ready condition will say."""

    reason: str
    """DependencyNotReady, DependencyMissing (a catalog dependency has no AppInstall), DependencyCycle."""
    message: str
    stalled: bool = False
    """A cycle: nothing but a spec change can end it."""


def edges(body: Body) -> list[Key]:
    """The AppInstalls `body` names in spec.dependsOn, as (namespace, name); namespace defaulted."""
    own = str((body.get("metadata") or {}).get("namespace") or "")
    refs = (body.get("spec") or {}).get("dependsOn") or []
    out: list[Key] = []
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, Mapping) and ref.get("name"):
            out.append((str(ref.get("namespace") or own), str(ref["name"])))
    return out


def find_cycle(
    start: Key, edges_of: Callable[[Key], Sequence[Key]], *, limit: int = MAX_WALK
) -> list[Key] | None:
    """A path of dependsOn edges from `start` back to itself (start first and last), or None.

    Depth-first in spec order, so the same cycle is named the same way each time; cycles that do
    not pass through `start` are its dependencies' to report.
    """
    path, seen = [start], {start}
    stack = [iter(edges_of(start))]
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            path.pop()
            continue
        if nxt == start:
            return [*path, start]
        if nxt in seen or len(seen) >= limit:
            continue
        seen.add(nxt)
        path.append(nxt)
        stack.append(iter(edges_of(nxt)))
    return None


def not_ready(body: Body | None, *, detail: bool = True) -> str | None:
    """None when `body` is Ready at its current generation; else what it waits for, in a few words
    (with its Ready message when `detail`: not for another namespace's app, which may say too much)."""
    if body is None:
        return "does not exist"
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "is being deleted"
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        if ready is None:
            return "has no Ready condition yet"
        message = f": {str(ready.get('message') or '')[:200]}" if detail else ""
        return f"is not Ready ({ready.get('reason')}{message})"
    if status.get("observedGeneration") != meta.get("generation"):
        return (
            f"is Ready but not at its current generation (observed {status.get('observedGeneration')}, "
            f"generation {meta.get('generation')})"
        )
    return None


def _name(key: Key) -> str:
    return f"{key[0]}/{key[1]}"


def catalog_needs(dependencies: Iterable[Dependency]) -> list[Dependency]:
    """The catalog dependencies an install waits for: other apps (not the platform), mandatory ones."""
    return [d for d in dependencies if (d.type or "application") == "application" and d.mandatory]


def waiting_for(
    body: Body,
    lookup: Lookup,
    *,
    catalog: Sequence[Dependency] = (),
    of_app: Callable[[str, str], Sequence[Body]] = lambda ns, app: (),
) -> Waiting | None:
    """Pure: why `body` cannot install or upgrade now because of other AppInstalls, or None.

    `lookup` gives the newest known body of an AppInstall; `of_app(namespace, app)` the AppInstalls
    of a catalog app in a namespace. The first dependency that holds it is named.
    """
    meta = body.get("metadata") or {}
    me: Key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    def edges_of(key: Key) -> Sequence[Key]:
        if key == me:
            return edges(body)
        found = lookup(key)
        return edges(found) if found is not None else ()

    cycle = find_cycle(me, edges_of)
    if cycle is not None:
        named = " -> ".join(_name(k) for k in cycle)
        return Waiting(
            "DependencyCycle",
            f"spec.dependsOn makes a cycle: {named}; none of them can install. Remove one of these "
            "dependencies.",
            stalled=True,
        )
    for key in edges(body):
        why = not_ready(lookup(key), detail=key[0] == me[0])
        if why is not None:
            return Waiting(
                "DependencyNotReady",
                f"Waiting for AppInstall {_name(key)} (spec.dependsOn): it {why}. This app installs or "
                "upgrades once it is Ready.",
            )
    own_app = (body.get("spec") or {}).get("app")
    for dep in catalog_needs(catalog):
        if dep.app == own_app:
            continue  # Olares' shared apps: a user's install needs the admin's; Kubemart has no such split
        wanted = f"{dep.app} {dep.version}" if dep.version else dep.app
        found = [b for b in of_app(me[0], dep.app) if (b.get("metadata") or {}).get("name") != me[1]]
        if not found:
            return Waiting(
                "DependencyMissing",
                f"The catalog says this app needs {wanted}, and namespace {me[0]} has no AppInstall of "
                f"{dep.app}: install it (kubectl market install {dep.app} -n {me[0]}). This app installs "
                "once it is Ready.",
            )
        problems = [_catalog_problem(b, dep) for b in found]
        if all(problems):
            first = found[0]["metadata"]["name"]
            return Waiting(
                "DependencyNotReady",
                f"Waiting for AppInstall {me[0]}/{first} ({wanted}, a catalog dependency): it {problems[0]}. "
                "This app installs or upgrades once it is Ready.",
            )
    return None


def _catalog_problem(body: Body, dep: Dependency) -> str | None:
    why = not_ready(body)
    if why is not None or not dep.version:
        return why
    installed = str((body.get("status") or {}).get("installedVersion") or "")
    try:
        matches = parse_constraint(dep.version).matches(installed)
    except InvalidConstraint:
        return None  # the catalog checked it; an unreadable range is no reason to wait forever
    return None if matches else f"has version {installed or 'none'}, not {dep.version}"


def blocking_dependents(body: Body, dependents: Iterable[Body], lookup: Lookup) -> list[str]:
    """Pure: the AppInstalls (`namespace/name`) whose spec.dependsOn still names `body`, if its
    deletion must wait for them; [] when none do or its deletion policy ignores them.

    Only dependents of its own namespace hold it: a tenant cannot stop another namespace's uninstall
    by naming its app. A dependent being deleted that `body` itself depends on (a cycle deleted
    together) does not hold it either: each would wait for the other for ever.
    """
    meta = body.get("metadata") or {}
    if (meta.get("annotations") or {}).get(DELETION_POLICY) == IGNORE_DEPENDENTS:
        return []
    me: Key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    def edges_of(key: Key) -> Sequence[Key]:
        found = body if key == me else lookup(key)
        return edges(found) if found is not None else ()

    out = []
    for other in dependents:
        m = other.get("metadata") or {}
        key: Key = (str(m.get("namespace") or ""), str(m.get("name") or ""))
        if key == me or key[0] != me[0] or me not in edges(other):
            continue
        if m.get("deletionTimestamp") and find_cycle(key, edges_of) is not None:
            continue
        out.append(_name(key))
    return sorted(out)


WAITING_REASONS = frozenset({"DependencyNotReady", "DependencyMissing"})


def _ready(body: Body) -> tuple[Any, Any]:
    found: Mapping[str, Any] = next(
        (c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    return found.get("status"), found.get("reason")


def waiting_namespace(body: Body) -> list[Hashable]:
    """The "waiting" index: the namespace of an AppInstall that waits for a dependency."""
    if _ready(body)[1] in WAITING_REASONS:
        return [str((body.get("metadata") or {}).get("namespace") or "")]
    return []


_EDGES = 4
"""Where a view holds the edges."""


def view(body: Body | None) -> tuple[Any, ...] | None:
    """What others read of an AppInstall as a dependency or dependent: a change of it wakes them."""
    if body is None:
        return None
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    return (
        meta.get("generation"),
        status.get("observedGeneration"),
        _ready(body),
        bool(meta.get("deletionTimestamp")),
        tuple(edges(body)),
        status.get("installedVersion"),
        (body.get("spec") or {}).get("app"),
    )


class Wakes:
    """What a change of one AppInstall wakes, from what it looked like as a dependency before.

    The view last seen is kept here, not read from the Store's old body: a reconcile's status write
    updates the body it worked from in place, which is the Store's own.
    """

    def __init__(self, apps: Directory) -> None:
        self._apps = apps
        self._views: dict[Key, tuple[Any, ...]] = {}

    def changed(self, old: Body | None, new: Body | None) -> set[Key]:
        body = new if new is not None else old
        if body is None:
            return set()
        meta = body.get("metadata") or {}
        key: Key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        before, after = self._views.pop(key, None), view(new)
        if after is not None:
            self._views[key] = after
        return to_wake(before, after, key, self._apps)


def to_wake(
    before: tuple[Any, ...] | None, after: tuple[Any, ...] | None, key: Key, apps: Directory
) -> set[Key]:
    """The AppInstalls to reconcile because `key` changed from view `before` to `after` (None: absent).

    Its dependents (the "dependents" index) and, for catalog dependencies, the AppInstalls of its
    namespace that wait (the "waiting" index); when its own edges change or it is gone, the
    dependencies it named, whose deletion (or cycle) may have waited on it.
    """
    if before == after:
        return set()
    keys = apps.lookup("dependents", key) | apps.lookup("waiting", key[0])
    edges_before = before[_EDGES] if before else ()
    edges_after = after[_EDGES] if after else ()
    if after is None or edges_before != edges_after:
        keys |= set(edges_before) | set(edges_after)
    keys.discard(key)
    return keys
