"""Status correction: read a release's live objects against its manifest, then correct what drifted.

Two halves, so that a reconcile can observe before it decides to act:

- `read_live` only reads: the manifest (kept per revision), API discovery for each kind, a GET of
  each object, and, where an object changed since it was last found in sync, a server-side apply
  dry-run of the manifest's object (domain.drift explains the comparison). Its answer is a frozen
  `LiveState`: drift with the fields, workload health, replicas, and the objects that could not be
  read, each with why (a kind the API server does not serve, a read the account may not make).
- `correct` writes: a server-side apply of each drifted object from the manifest (field manager
  `kubemart`), or a scale where only the replicas of a stop or resume moved.

An app in sync costs one GET per object and no write: an object whose resourceVersion is the one
last found in sync, for the same manifest object, needs no new dry-run.

Reads, dry-runs and writes act as the app's ServiceAccount when it has one (`acting_as`), never as
the operator: the manifest comes from a Secret in the tenant's namespace, and reading or applying
it with the operator's rights would let whoever can write that Secret reach objects the tenant
itself may not.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from kubemart.adapters.helm import Helm
from kubemart.adapters.kube import KIND_NOT_SERVED, Kube, KubeError, Principal
from kubemart.domain.desired import desired_object, for_apply, well_formed
from kubemart.domain.drift import (
    SCALABLE_KINDS,
    WORKLOAD_KINDS,
    Drift,
    ObjectRef,
    compare_dry_run,
    compare_fields,
    ref_of,
    replicas_target,
)
from kubemart.domain.health import workloads
from kubemart.domain.live_state import CorrectionResult, LiveState, Unreadable
from kubemart.models.appinstall import DriftMode

T = TypeVar("T")
READS_AT_ONCE = 8
"""API requests one app's check has in flight: a big chart never crowds out other apps' checks."""
_IN_SYNC_KEPT = 50_000
_MANIFESTS_KEPT = 256


@dataclass
class Check:
    """read_live and correct in one, for the AppInstall reconcile of services/appinstall.py."""

    drift: list[Drift] = field(default_factory=list)
    corrected: list[Drift] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Corrections the API server refused, and objects that could not be checked, with why."""
    unhealthy: list[str] = field(default_factory=list)
    scaled_to_zero: bool = True
    replicas: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Wanted:
    """A manifest object and where it lives. Its desired form is built when it is needed (a dry-run,
    a correction), not kept: the manifest itself is already kept by the Helm adapter."""

    ref: ObjectRef
    source: Mapping[str, Any]
    digest: str
    release: str
    release_namespace: str
    namespaced: bool

    def desired(self) -> dict[str, Any]:
        return desired_object(
            self.source,
            release=self.release,
            release_namespace=self.release_namespace,
            namespaced=self.namespaced,
        )


class Corrector:
    def __init__(
        self,
        kube: Kube,
        helm: Helm,
        *,
        watch_kind: Callable[[str, str, tuple[str, str]], None] | None = None,
        by_dry_run: bool = True,
    ) -> None:
        self.kube = kube
        self.helm = helm
        self.watch_kind = watch_kind
        """Called with each (apiVersion, kind) a release holds and the release (namespace, name), so
        that changes to objects of the kind wake the app (DriftWatcher.ensure)."""
        self.by_dry_run = by_dry_run
        """False: compare field by field only, as when a dry-run is refused (bench/drift_methods.py)."""
        self._in_sync: OrderedDict[ObjectRef, tuple[str, str, str, str]] = OrderedDict()
        self._manifests: OrderedDict[tuple[str, str, int, str], list[_Wanted]] = OrderedDict()

    # --- the read half ----------------------------------------------------------------------------

    async def read_live(
        self,
        *,
        release: str,
        namespace: str,
        mode: DriftMode,
        stopped: bool,
        revision: int | None = None,
        manifest: Sequence[Mapping[str, Any]] | None = None,
        restore: Mapping[str, int] | None = None,
        acting_as: Principal | None = None,
    ) -> LiveState:
        """All reads, no write. The objects wanted are `manifest`, or else those of Helm's record of
        `revision` (then what is learnt of them is kept for the next check of the same revision)."""
        if manifest is None:
            manifest = await self.helm.manifest(release, namespace, revision or 0)
        if mode is DriftMode.DISABLED and not stopped:
            manifest = [o for o in manifest if o.get("kind") in WORKLOAD_KINDS]  # health only
        reader = self.kube.acting_as(acting_as)
        wanted, unreadable = await self._wanted(manifest, release, namespace, revision, mode, stopped)
        limit = asyncio.Semaphore(READS_AT_ONCE)
        got = await _bounded(limit, [partial(self._get, reader, w.ref) for w in wanted])
        lives: dict[ObjectRef, dict[str, Any] | None] = {}
        for w, (live, problem) in zip(wanted, got, strict=True):
            if problem is not None:
                unreadable.append(problem)
            else:
                lives[w.ref] = live
        readable = [w for w in wanted if w.ref in lives]
        unhealthy, replicas, scaled_to_zero = workloads(lives, stopped=stopped)
        requests = len(wanted)
        drift: list[Drift] = []
        targets: dict[ObjectRef, int] = {}
        by_fields: list[str] = []
        if mode is not DriftMode.DISABLED or stopped:
            who = acting_as.user if acting_as is not None else ""
            compare = mode is not DriftMode.DISABLED
            found = await _bounded(
                limit,
                [partial(self._drift_of, reader, w, lives[w.ref], who, compare, stopped) for w in readable],
            )
            for w, (paths, fallback, asked) in zip(readable, found, strict=True):
                requests += asked
                if fallback:
                    by_fields.append(fallback)
                live = lives[w.ref]
                target = (
                    replicas_target(w.desired(), stopped=stopped, restore=restore)
                    if w.ref.kind in SCALABLE_KINDS and (stopped or restore)
                    else None
                )
                if target is not None:
                    targets[w.ref] = target
                    paths = tuple(p for p in paths if p != "spec.replicas")
                    if live is not None and int((live.get("spec") or {}).get("replicas", 1)) != target:
                        paths += ("spec.replicas",)
                if live is None:
                    drift.append(Drift(w.ref, missing=True))
                elif paths:
                    drift.append(Drift(w.ref, missing=False, fields=paths))
        drifted = {d.ref for d in drift}
        return LiveState(
            drift=tuple(drift),
            unhealthy=tuple(unhealthy),
            replicas=replicas,
            scaled_to_zero=scaled_to_zero,
            unreadable=tuple(unreadable),
            compared_by_fields=tuple(by_fields),
            requests=requests,
            desired={w.ref: w.desired() for w in readable if w.ref in drifted},
            targets=targets,
        )

    async def _wanted(
        self,
        manifest: Sequence[Mapping[str, Any]],
        release: str,
        namespace: str,
        revision: int | None,
        mode: DriftMode,
        stopped: bool,
    ) -> tuple[list[_Wanted], list[Unreadable]]:
        """The manifest's objects as desired objects, for the kinds the API server serves."""
        # The manifest is read from a Secret a tenant may write: an object without a kind or a name
        # (which would make a GET a LIST) is reported, not requested.
        malformed = [o for o in manifest if not well_formed(o)]
        manifest = [o for o in manifest if well_formed(o)]
        kinds = sorted({(str(o.get("apiVersion", "")), str(o.get("kind", ""))) for o in manifest})
        infos = dict(
            zip(kinds, await asyncio.gather(*(self.kube.resource_for(*k) for k in kinds)), strict=True)
        )
        if self.watch_kind is not None:
            for (api_version, kind), info in infos.items():
                if info is not None:
                    self.watch_kind(api_version, kind, (namespace, release))
        unreadable = [
            Unreadable(
                ref_of(o, default_namespace=namespace, namespaced=True),
                KIND_NOT_SERVED,
                f"{o.get('apiVersion')} {o.get('kind')} is not served by the API server; install the "
                "CustomResourceDefinition that defines it, or remove the object from the chart",
            )
            for o in manifest
            if infos[(str(o.get("apiVersion", "")), str(o.get("kind", "")))] is None
        ] + [
            Unreadable(
                ObjectRef(str(o.get("apiVersion", "")), str(o.get("kind", "")), namespace, "(no name)"),
                "Invalid",
                "the release manifest holds an object without apiVersion, kind or metadata.name",
            )
            for o in malformed
        ]
        scopes = "".join("n" if i is not None and i.namespaced else "c" for i in infos.values())
        key = (release, namespace, revision or 0, f"{mode.value}:{stopped}:{scopes}")
        cached = self._manifests.get(key) if revision is not None else None
        if cached is None:
            cached = []
            for o in manifest:
                info = infos[(str(o.get("apiVersion", "")), str(o.get("kind", "")))]
                if info is None:
                    continue
                desired = desired_object(
                    o, release=release, release_namespace=namespace, namespaced=info.namespaced
                )
                ref = ref_of(desired, default_namespace=namespace, namespaced=info.namespaced)
                digest = hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()
                cached.append(_Wanted(ref, o, digest, release, namespace, info.namespaced))
            if revision is not None:
                _keep(self._manifests, key, cached, _MANIFESTS_KEPT)
        return list(cached), unreadable

    async def _get(self, reader: Kube, ref: ObjectRef) -> tuple[dict[str, Any] | None, Unreadable | None]:
        try:
            return await reader.get_object(ref.api_version, ref.kind, ref.name, ref.namespace), None
        except KubeError as err:
            if err.reason == KIND_NOT_SERVED:
                return None, Unreadable(ref, KIND_NOT_SERVED, err.message)
            if err.status == 403:
                return None, Unreadable(ref, "Forbidden", f"reading it is not allowed ({err.message})")
            raise

    async def _drift_of(
        self, reader: Kube, w: _Wanted, live: dict[str, Any] | None, who: str, compare: bool, stopped: bool
    ) -> tuple[tuple[str, ...], str | None, int]:
        """(differing paths, why the fallback was used or None, API requests made)."""
        if live is None or not compare:
            return (), None, 0
        meta = live.get("metadata") or {}
        seen = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")), w.digest, f"{who}:{stopped}")
        if self._in_sync.get(w.ref) == seen:
            self._in_sync.move_to_end(w.ref)
            return (), None, 0
        fallback = None
        try:
            if not self.by_dry_run:
                return await _off_loop(compare_fields, w.desired(), live), None, 0
            dry_run = await reader.apply_object(w.desired(), namespace=w.ref.namespace, dry_run=True)
            paths = await _off_loop(compare_dry_run, live, dry_run)
        except KubeError as err:
            if err.status == 0 and err.reason != KIND_NOT_SERVED:
                raise  # the API server is away: the whole check is retried
            # Refused (an account that may read but not patch, a webhook that is down): compare the
            # fields the manifest sets instead, so that drift is still seen.
            fallback = f"{w.ref}: the dry-run was refused ({_safe(w.ref, err)})"
            paths = await _off_loop(compare_fields, w.desired(), live)
        if stopped and w.ref.kind in SCALABLE_KINDS:
            unchanged = not [p for p in paths if p != "spec.replicas"]
        else:
            unchanged = not paths
        if unchanged and fallback is None:
            _keep(self._in_sync, w.ref, seen, _IN_SYNC_KEPT)
        return paths, fallback, 1

    # --- the write half ---------------------------------------------------------------------------

    async def correct(
        self, live: LiveState, *, mode: DriftMode, stopped: bool, acting_as: Principal | None = None
    ) -> CorrectionResult:
        """Correct `live.drift`: re-apply drifted objects (mode `enabled`), and in every mode hold the
        replicas of a stop or resume. Writes act as `acting_as`; each refusal is listed, not raised
        (except when the API server cannot be reached at all)."""
        writer = self.kube.acting_as(acting_as)
        corrected: list[Drift] = []
        failed: list[str] = []
        for d in live.drift:
            target = live.targets.get(d.ref)
            try:
                if d.fields == ("spec.replicas",) and target is not None:
                    await writer.scale(
                        d.ref.api_version, d.ref.kind, d.ref.name, d.ref.namespace or "", target
                    )
                elif mode is DriftMode.ENABLED:
                    body = for_apply(live.desired[d.ref], replicas=0 if stopped else None)
                    await writer.apply_object(body, namespace=d.ref.namespace)
                    if target is not None:
                        await writer.scale(
                            d.ref.api_version, d.ref.kind, d.ref.name, d.ref.namespace or "", target
                        )
                else:
                    if target is not None and "spec.replicas" in d.fields:
                        await writer.scale(
                            d.ref.api_version, d.ref.kind, d.ref.name, d.ref.namespace or "", target
                        )
                    continue  # warn (or disabled): reported, not corrected
                corrected.append(d)
                self._in_sync.pop(d.ref, None)
            except KubeError as err:
                if err.status == 0 and err.reason != KIND_NOT_SERVED:
                    raise
                failed.append(f"{d.ref}: {_safe(d.ref, err)}")
        return CorrectionResult(tuple(corrected), tuple(failed))

    # --- both, for the current reconcile ----------------------------------------------------------

    async def check(
        self,
        *,
        release: str,
        namespace: str,
        revision: int,
        mode: DriftMode,
        stopped: bool,
        restore: dict[str, int] | None = None,
        acting_as: Principal | None = None,
    ) -> Check:
        live = await self.read_live(
            release=release,
            namespace=namespace,
            revision=revision,
            mode=mode,
            stopped=stopped,
            restore=restore,
            acting_as=acting_as,
        )
        fix = await self.correct(live, mode=mode, stopped=stopped, acting_as=acting_as)
        return Check(
            drift=list(live.drift),
            corrected=list(fix.corrected),
            failed=[u.describe() for u in live.unreadable] + list(fix.failed),
            unhealthy=list(live.unhealthy),
            scaled_to_zero=live.scaled_to_zero,
            replicas=dict(live.replicas),
        )


def _safe(ref: ObjectRef, err: KubeError) -> str:
    """The API server's message, without a Secret's values (an Invalid error may quote them)."""
    if ref.kind == "Secret" and err.status == 422 and ":" in err.message:
        return err.message.rsplit(":", 1)[1].strip() or err.reason
    return err.message


async def _bounded(limit: asyncio.Semaphore, calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the calls, `limit` at a time. Each coroutine is made only once it may run, so that none is
    left un-awaited when the check is cancelled (a newer spec, the operator stopping)."""

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with limit:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


_BIG = 64 * 1024
"""Bytes of ConfigMap or Secret data above which the comparison leaves the event loop."""


async def _off_loop(
    compare: Callable[..., tuple[str, ...]], a: Mapping[str, Any], b: Mapping[str, Any]
) -> tuple[str, ...]:
    # A CRD's schema can be hundreds of kilobytes (argo-cd's ApplicationSet: 340 KiB, 37 ms to walk):
    # walking it must not hold up every other app's reconcile.
    if _heavy(a):
        return await asyncio.to_thread(compare, a, b)
    return compare(a, b)


def _heavy(obj: Mapping[str, Any]) -> bool:
    if obj.get("kind") == "CustomResourceDefinition":
        return True
    data = [*((obj.get("data") or {}).values()), *((obj.get("binaryData") or {}).values())]
    return sum(len(v) for v in data if isinstance(v, str)) > _BIG


def _keep(cache: OrderedDict[Any, Any], key: Any, value: Any, limit: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)
