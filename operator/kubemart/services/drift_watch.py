"""Watches the objects Helm manages and wakes the app that owns one when it changes.

Helm labels every object it creates `app.kubernetes.io/managed-by: Helm` and annotates it with
its release's name and namespace; a server-side label selector keeps the watches to those. A
change, a deletion, or a workload's status moving wakes the owning AppInstall within seconds,
and its reconcile decides whether that is drift, a health change, or nothing.

The common kinds are watched from the start; any other kind (a chart's custom resources, RBAC,
webhooks) from the moment a release is found to hold one (`ensure`, called when live state is
read). A watch the API server refuses (forbidden, or a kind no longer served) is tried a bounded
number of times and then left alone for `retry_after` seconds, with one warning: the app's periodic
resync still sees those objects' drift, only later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from lightkube.core.exceptions import ApiError

from kubemart.adapters.kube import Kube, KubeError
from kubemart.runtime.controller import backoff

log = logging.getLogger("kubemart.drift")

WATCHED_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("networking.k8s.io/v1", "Ingress"),
)
MANAGED = {"app.kubernetes.io/managed-by": "Helm"}
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
RELEASE_RECORDS = {"owner": "helm"}
"""Helm's own release records (Secrets labelled owner=helm, name=<release>): a new revision, by us or
by a person's helm, wakes the app, whose check then reads (and so watches) every kind it holds."""
REFUSALS_TRIED = 5
"""Attempts at a watch the API server refuses (403, 404) before it is left alone for a while."""
NOT_SERVED_RETRY = 30.0
"""Seconds before a kind found not served (its CRD gone, or not yet there) is looked for again."""

OnChange = Callable[[str, str], None]
"""Called with (release namespace, release name)."""


@dataclass
class _Kind:
    begin: asyncio.Task[None] | None = None
    """Looks the kind up, then starts the watches."""
    watches: list[asyncio.Task[None]] = field(default_factory=list)
    retry_at: float | None = None
    """Set when the watch was given up: `ensure` starts it again from then on."""
    listening: bool = False
    """The watch has listed what exists and follows changes from there."""
    waiting: set[tuple[str, str]] = field(default_factory=set)
    """Releases that hold the kind and were read before its watch listened: woken once it does, so
    that a change between their read and the watch's start is not missed."""

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in (self.begin, *self.watches) if t is not None]

    def running(self) -> bool:
        return any(not t.done() for t in self.tasks())


class DriftWatcher:
    def __init__(
        self,
        kube: Kube,
        on_change: OnChange,
        *,
        namespaces: list[str] | None = None,
        retry_after: float = 600.0,
        backoff_base: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.on_change = on_change
        self.namespaces: list[str | None] = list(namespaces or []) or [None]
        self.retry_after = retry_after
        self.backoff_base = backoff_base
        self._clock = clock
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._closed = False

    def start(self) -> None:
        for api_version, kind in WATCHED_KINDS:
            self.ensure(api_version, kind)
        state = self._kinds[("v1", "release records")] = _Kind()
        state.begin = asyncio.create_task(
            self._begin("v1", "Secret", state, labels=RELEASE_RECORDS, owner=_record_owner),
            name="drift-lookup:releases",
        )

    def ensure(self, api_version: str, kind: str, owner: tuple[str, str] | None = None) -> None:
        """Watch this kind, if it is not watched yet (nor was given up on less than `retry_after` ago).
        `owner` (release namespace, name) just read objects of the kind: if the watch does not listen
        yet, the release is woken once it does."""
        if self._closed:
            return
        state = self._kinds.get((api_version, kind))
        if state is not None:
            if state.running():
                if owner is not None and not state.listening:
                    state.waiting.add(owner)
                return
            if state.retry_at is not None and self._clock() < state.retry_at:
                return
        state = _Kind()
        if owner is not None:
            state.waiting.add(owner)
        self._kinds[(api_version, kind)] = state
        state.begin = asyncio.create_task(self._begin(api_version, kind, state), name=f"drift-lookup:{kind}")

    async def _begin(
        self,
        api_version: str,
        kind: str,
        state: _Kind,
        *,
        labels: dict[str, str] = MANAGED,
        owner: Callable[[Any], tuple[str, str] | None] | None = None,
    ) -> None:
        """Find the kind's resource, then follow it in each watched namespace (or cluster-wide)."""
        info, why = None, "it is not served by the API server"
        for failures in range(1, REFUSALS_TRIED + 1):
            try:
                info = await self.kube.resource_for(api_version, kind)
                break
            except KubeError as err:
                why = f"API discovery failed: {err.message}"
                await asyncio.sleep(backoff(failures, base=self.backoff_base, cap=30.0))
        if info is None:
            # A kind not served may be served soon (its CRD being installed): looked for again sooner.
            state.retry_at = self._clock() + NOT_SERVED_RETRY
            log.warning("%s %s is not watched (%s)", api_version, kind, why)
            return
        res = self.kube.mapper.resource_class(info)
        for ns in self.namespaces if info.namespaced else [None]:
            where = (ns or "*") if info.namespaced else None
            state.watches.append(
                asyncio.create_task(
                    self._follow(res, kind, where, state, labels, owner or _object_owner),
                    name=f"drift-watch:{kind}:{ns}",
                )
            )

    async def _follow(
        self,
        res: Any,
        kind: str,
        namespace: str | None,
        state: _Kind,
        labels: dict[str, str],
        owner: Callable[[Any], tuple[str, str] | None],
    ) -> None:
        failures = refusals = 0
        api: Any = self.kube.client
        scope: dict[str, Any] = {"namespace": namespace} if namespace is not None else {}
        while True:
            try:
                # Start after what exists (each app checks its objects when the operator starts): from the
                # newest object listed, so that the watch does not replay every object as ADDED.
                newest = 0
                async for obj in api.list(res, labels=labels, chunk_size=500, **scope):
                    newest = max(newest, int(obj.metadata.resourceVersion or 0))
                if not state.listening:
                    state.listening = True
                    waiting, state.waiting = state.waiting, set()
                    for release_namespace, release in waiting:
                        self.on_change(release_namespace, release)
                async for _event, obj in api.watch(
                    res, labels=labels, resource_version=str(newest) if newest else None, **scope
                ):
                    failures = refusals = 0
                    if (found := owner(obj)) is not None:
                        self.on_change(*found)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server went away, refused, or the watch expired
                code = _status(exc)
                if code in (403, 404):
                    refusals += 1
                    if refusals >= REFUSALS_TRIED:
                        wait = self.retry_after if code == 403 else NOT_SERVED_RETRY
                        state.retry_at = self._clock() + wait
                        # Left alone on purpose (and said so): no longer counted as a watch that should run.
                        if (me := asyncio.current_task()) in state.watches:
                            state.watches.remove(me)
                        log.warning(
                            "watch of %s refused %d times (%s); changes to these objects are seen at the "
                            "next resync, and the watch is tried again in %.0fs at the earliest",
                            kind,
                            refusals,
                            _describe(exc),
                            wait,
                        )
                        return
                failures += 1
                delay = backoff(failures, base=self.backoff_base, cap=30.0)
                log.log(
                    logging.DEBUG if code == 410 else logging.INFO if refusals else logging.WARNING,
                    "watch of %s ended (%s); again in %.0fs",
                    kind,
                    _describe(exc),
                    delay,
                )
                await asyncio.sleep(delay)

    def alive(self) -> tuple[int, int]:
        """(watches running, watches started), for the runtime view."""
        tasks = [t for s in self._kinds.values() for t in s.watches]
        return sum(1 for t in tasks if not t.done()), len(tasks)

    def given_up(self) -> set[tuple[str, str]]:
        """The kinds left unwatched for now (refused, or not served), until `ensure` tries them again."""
        return {k for k, s in self._kinds.items() if s.retry_at is not None and not s.running()}

    def watched(self) -> set[tuple[str, str]]:
        """The kinds being watched now."""
        return {k for k, s in self._kinds.items() if any(not t.done() for t in s.watches)}

    async def close(self) -> None:
        self._closed = True
        tasks = [t for s in self._kinds.values() for t in s.tasks()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _describe(exc: Exception) -> str:
    """One line for the log (httpx's own message runs over two, with a link)."""
    if isinstance(exc, ApiError):
        return f"HTTP {exc.status.code}: {exc.status.message}"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _status(exc: Exception) -> int | None:
    """The HTTP status of a failed list or watch (a bare 404 has no Status body), if there was one."""
    if isinstance(exc, ApiError):
        return int(exc.status.code or 0)
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def _object_owner(obj: Any) -> tuple[str, str] | None:
    """(namespace, name) of the release an object belongs to, from Helm's annotations."""
    annotations = obj.metadata.annotations or {}
    release, namespace = annotations.get(RELEASE_NAME), annotations.get(RELEASE_NAMESPACE)
    return (namespace, release) if release and namespace else None


def _record_owner(obj: Any) -> tuple[str, str] | None:
    """(namespace, name) of the release a Helm release record is a revision of."""
    release, namespace = (obj.metadata.labels or {}).get("name"), obj.metadata.namespace
    return (namespace, release) if release and namespace else None
