"""Which resource serves an (apiVersion, kind): a RESTMapper over the API server's discovery.

A chart may hold any kind: its own CRDs and their custom resources, RBAC objects, webhooks,
ServiceMonitors. lightkube only knows the kinds built into it, so the operator asks the API server
instead, as kubectl and controller-runtime do: `/api/v1` and `/apis/<group>/<version>` list every
resource of a group-version with its plural name, scope and verbs.

Only the group-versions a manifest names are fetched, each once, and kept. A kind that is not
there is looked up again (a chart may just have added its CRD), but no more often than once per
`negative_ttl` seconds per group-version, and concurrent look-ups share one request, so a kind
that truly does not exist costs one request per TTL however many apps and objects name it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericNamespacedResource,
    create_api_info,
)

Fetch = Callable[[str], Awaitable[Mapping[str, Any] | None]]
"""GET of a discovery path; None when the API server does not serve it (404)."""


@dataclass(frozen=True)
class ResourceInfo:
    """One resource of the API: what a manifest's (apiVersion, kind) is read and written through."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str] = field(default=frozenset())
    subresources: frozenset[str] = field(default=frozenset())

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def may(self, verb: str) -> bool:
        """Whether the resource supports `verb` (an empty verb list, as some aggregated APIs give, allows all)."""
        return not self.verbs or verb in self.verbs


def discovery_path(api_version: str) -> str:
    """The discovery document of a group-version: `/api/v1` for the core group, else `/apis/<g>/<v>`."""
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


def parse_resource_list(doc: Mapping[str, Any], api_version: str) -> dict[str, ResourceInfo]:
    """The resources of an APIResourceList by kind (pure). Subresources (`deployments/scale`) are
    folded into their parent's `subresources`."""
    out: dict[str, ResourceInfo] = {}
    subs: dict[str, set[str]] = {}
    entries = [r for r in doc.get("resources") or [] if isinstance(r, Mapping)]
    for r in entries:
        name = str(r.get("name") or "")
        if "/" in name:
            parent, _, sub = name.partition("/")
            subs.setdefault(parent, set()).add(sub)
    for r in entries:
        name, kind = str(r.get("name") or ""), str(r.get("kind") or "")
        if not name or not kind or "/" in name or kind in out:
            continue
        out[kind] = ResourceInfo(
            api_version=api_version,
            kind=kind,
            plural=name,
            namespaced=bool(r.get("namespaced")),
            verbs=frozenset(str(v) for v in r.get("verbs") or []),
            subresources=frozenset(subs.get(name, ())),
        )
    return out


@dataclass
class _Entry:
    fetched_at: float
    kinds: dict[str, ResourceInfo] | None
    """None: the API server does not serve this group-version."""


class RESTMapper:
    """(apiVersion, kind) -> ResourceInfo, from discovery, cached per group-version."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        negative_ttl: float = 10.0,
        positive_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.negative_ttl = negative_ttl
        self.positive_ttl = positive_ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[_Entry]] = {}
        self._classes: dict[ResourceInfo, type] = {}
        self.requests = 0
        """Discovery requests made, for tests and the benchmark."""

    async def lookup(self, api_version: str, kind: str) -> ResourceInfo | None:
        """The resource serving `kind` of `api_version`; None when the API server serves no such kind."""
        entry = self._entries.get(api_version)
        now = self._clock()
        if entry is not None:
            age = now - entry.fetched_at
            found = entry.kinds.get(kind) if entry.kinds is not None else None
            if found is not None and age < self.positive_ttl:
                return found
            if found is None and age < self.negative_ttl:
                return None  # looked for very recently: do not ask again yet
        entry = await self._refresh(api_version)
        return entry.kinds.get(kind) if entry.kinds is not None else None

    def forget(self, api_version: str) -> None:
        """Drop what is known of a group-version (a request found its resource gone)."""
        self._entries.pop(api_version, None)

    async def _refresh(self, api_version: str) -> _Entry:
        running = self._inflight.get(api_version)
        if running is not None:
            return await asyncio.shield(running)  # one request for every concurrent look-up
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._inflight[api_version] = future
        try:
            self.requests += 1
            doc = await self._fetch(discovery_path(api_version))
            entry = _Entry(self._clock(), parse_resource_list(doc, api_version) if doc is not None else None)
            self._entries[api_version] = entry
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so that no waiter-less future is logged as unhandled
            raise
        finally:
            del self._inflight[api_version]

    def resource_class(self, info: ResourceInfo) -> type:
        """A lightkube generic resource class for `info` (bodies stay plain dicts: nothing is dropped).
        Kept out of lightkube's global registry, which refuses a kind whose scope or plural changes."""
        cls = self._classes.get(info)
        if cls is None:
            base: type = GenericNamespacedResource if info.namespaced else GenericGlobalResource
            api_info = create_api_info(info.group, info.version, info.kind, info.plural)
            cls = type(info.kind, (base,), {"_api_info": api_info})
            self._classes[info] = cls
        return cls
