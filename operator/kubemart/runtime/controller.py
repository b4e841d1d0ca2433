"""A keyed reconcile loop, as controller-runtime has it, on top of kopf's watches.

kopf delivers watch events; this turns them into at most one reconcile at a time per object,
re-run when the object asks for it or when its reconcile said when to look again. A reconcile
never runs twice concurrently for one key, and the newest body is always the one reconciled.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from kubemart.runtime import logs, metrics
from kubemart.runtime.index import Store

Key = tuple[str, str]
"""(namespace or "", name)."""
Body = dict[str, Any]


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: look again after `requeue_after` seconds, or wait for an event.

    `backoff`: something failed that may pass; look again after an exponential backoff that grows
    with each consecutive such result for the object (and resets on any other result).
    """

    requeue_after: float | None = None
    backoff: bool = False


ReconcileFn = Callable[[Key, Body], Coroutine[Any, Any, Result]]
OnError = Callable[[Key, Body, Exception], Coroutine[Any, Any, None]]
"""Told of an unexpected failure of a reconcile, to say so in the object's status."""


def jittered(seconds: float, fraction: float = 0.1) -> float:
    """Spread periodic work so that many objects do not wake together."""
    return seconds * (1 + random.uniform(-fraction, fraction))


def backoff(failures: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with jitter: 2s, 4s, 8s ... never more than `cap`."""
    exponent = min(max(0, failures - 1), 32)  # past this the cap rules anyway; 2**n must not overflow
    return min(cap, jittered(min(cap, base * 2**exponent), 0.2))


def key_of(body: Body) -> Key:
    meta = body.get("metadata", {})
    return (meta.get("namespace") or "", meta["name"])


class Controller:
    def __init__(
        self,
        name: str,
        reconcile: ReconcileFn,
        *,
        needs: Callable[[Body], bool],
        logger: logging.Logger | None = None,
        on_error: OnError | None = None,
        store: Store | None = None,
    ) -> None:
        self.name = name
        self.store = store if store is not None else Store()
        self._reconcile = reconcile
        self._needs = needs
        self._on_error = on_error
        self._failures: dict[Key, int] = {}
        """Consecutive backoff results or unexpected failures, by object."""
        self._last_error: dict[Key, str] = {}
        self._forced: set[Key] = set()
        self._log = logger or logging.getLogger(f"kubemart.{name}")
        self._wake: dict[Key, asyncio.Event] = {}
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._stopping: dict[Key, asyncio.Task[None]] = {}
        """Workers of forgotten objects still winding down (a helm subprocess being terminated)."""
        self._current: dict[Key, asyncio.Task[Result]] = {}
        self._current_body: dict[Key, Body] = {}
        self._closed = False
        # A body recorded from a reconcile's own write can be the first news of a change made
        # meanwhile (its watch event, older than the write, is then dropped as stale): it must wake
        # the object's loop as an event would, for `needs` to judge.
        self.store.on_record = self._recorded

    # --- fed by watch events -------------------------------------------------------------------

    def observe(self, body: Body) -> None:
        """Record the newest body from a watch event; reconcile it if `needs` says it asks for it.

        `needs` is asked when the worker wakes, of the newest body known then: an event that is
        only the echo of the operator's own write does not cause another reconcile.
        """
        if self._closed:
            return
        key = key_of(body)
        if not self.record(body):
            return
        if key not in self._workers:
            self._wake[key] = asyncio.Event()
            # Everything this object's loop logs names the object (runtime.logs).
            self._workers[key] = asyncio.create_task(
                self._worker(key),
                name=f"{self.name}:{key[0]}/{key[1]}",
                context=logs.bind(str(body.get("kind") or self.name), *key),
            )
        else:
            self._wake[key].set()

    def record(self, body: Body) -> bool:
        """Keep `body` as the newest unless it is older than the one known (see Store.record)."""
        return self.store.record(body)

    def _recorded(self, key: Key) -> None:
        wake = self._wake.get(key)
        if wake is not None:
            wake.set()

    def forget(self, key: Key) -> None:
        """The object is gone: stop its loop."""
        self.store.forget(key)
        self._failures.pop(key, None)
        self._last_error.pop(key, None)
        worker = self._workers.pop(key, None)
        self._wake.pop(key, None)
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()
            self._stopping[key] = worker
            worker.add_done_callback(
                lambda _: self._stopping.pop(key, None) if self._stopping.get(key) is worker else None
            )

    def wake(self, keys: Iterable[Key]) -> None:
        """Reconcile these now, whatever their bodies say (something they depend on changed)."""
        for key in keys:
            if key in self._wake:
                self._forced.add(key)
                self._wake[key].set()

    def cancel_current(self, key: Key) -> bool:
        """Cancel the reconcile in flight for `key` (its helm subprocess is terminated); True if one was."""
        task = self._current.get(key)
        if task is None or task.done():
            return False
        if not task.cancelling():  # a second cancel would interrupt the first one's cleanup
            task.cancel()
        return True

    def reconciling(self, key: Key) -> Body | None:
        """The body the reconcile in flight for `key` started from, if one is in flight."""
        return self._current_body.get(key) if self.busy(key) else None

    def latest(self) -> dict[Key, Body]:
        return self.store.all()

    def busy(self, key: Key) -> bool:
        task = self._current.get(key)
        return task is not None and not task.done()

    def stats(self) -> dict[str, int]:
        """Read-only counts for the runtime view: objects known, woken and waiting, reconciling now."""
        return {
            "objects": len(self.store),
            "queued": sum(1 for k, w in self._wake.items() if w.is_set() or k in self._forced),
            "inFlight": sum(1 for t in self._current.values() if not t.done()),
        }

    # --- the loop ------------------------------------------------------------------------------

    async def _wait(self, key: Key, delay: float | None) -> None:
        """Until the delay is over, something forced a reconcile, or the newest body needs one."""
        wake = self._wake[key]
        loop = asyncio.get_running_loop()
        deadline = None if delay is None else loop.time() + delay
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            try:
                await asyncio.wait_for(wake.wait(), timeout=remaining)
            except TimeoutError:
                return
            wake.clear()
            if key in self._forced:
                self._forced.discard(key)
                return
            body = self.store.get(key)
            if body is None or self._needs(body):
                return

    async def _worker(self, key: Key) -> None:
        # An object deleted and created again under the same name: let the old loop finish first,
        # so that two reconciles of one key never overlap.
        old = self._stopping.get(key)
        if old is not None:
            await asyncio.gather(old, return_exceptions=True)
        delay: float | None = 0.0
        while True:
            await self._wait(key, delay)
            body = self.store.get(key)
            if body is None:
                return
            metrics.RECONCILES.labels(self.name).inc()
            # A copy of the top level: what a pass sets in its body (the status it wrote) never
            # changes the stored one behind the store's back.
            task = asyncio.create_task(self._reconcile(key, dict(body)))
            self._current[key] = task
            self._current_body[key] = body
            try:
                result = await task
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if me is not None and me.cancelling():
                    raise  # the worker itself is being stopped
                self._log.info("reconcile of %s/%s was cancelled; starting over", *key)
                result = Result(requeue_after=0.0)
            except Exception as exc:
                result = await self._failed(key, body, exc)
            else:
                self._last_error.pop(key, None)
            finally:
                if self._current.get(key) is task:
                    self._current.pop(key, None)
                    self._current_body.pop(key, None)
            delay = self._delay(key, result)

    def _delay(self, key: Key, result: Result) -> float | None:
        if not result.backoff:
            self._failures.pop(key, None)
            return result.requeue_after
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        return backoff(failures)

    async def _failed(self, key: Key, body: Body, exc: Exception) -> Result:
        """A bug or an error nobody expected: say so in the object's status, back off, log the traceback once."""
        what = f"{type(exc).__name__}: {str(exc)[:300]}"
        if self._last_error.get(key) == what:
            self._log.warning("reconcile of %s/%s failed again: %s", *key, what)
        else:
            self._last_error[key] = what
            self._log.exception("reconcile of %s/%s failed unexpectedly", *key)
        if self._on_error is not None:
            try:
                await self._on_error(key, body, exc)
            except Exception as err:  # the status write failed too: the backoff still applies
                self._log.warning("status of %s/%s not written after the failure: %s", *key, err)
        return Result(backoff=True)

    async def close(self) -> None:
        self._closed = True
        workers = list(self._workers.values())
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
