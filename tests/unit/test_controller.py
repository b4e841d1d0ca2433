"""The keyed reconcile loop: one reconcile at a time per key, newest body, requeues, cancellation.

Async scenarios run under asyncio.run in plain test functions. Outcomes are awaited with short
timeouts on a queue the fake reconcile feeds, never with bare sleeps; "it did not happen" is a
wait that times out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubemart.runtime.controller import Body, Controller, Key, Result, backoff, jittered, key_of

NAME = "test"
A: Key = ("apps", "a")
B: Key = ("apps", "b")
SOON = 1.0
"""How long to wait for something that should happen."""
QUIET = 0.2
"""How long to watch for something that should not happen."""


def obj(key: Key, rv: int, *, needs: bool = True) -> Body:
    """A watch event's body; `needs` is what the controller's `needs` callback answers for it."""
    return {"metadata": {"namespace": key[0], "name": key[1], "resourceVersion": str(rv)}, "needs": needs}


def rv_of(body: Body) -> int:
    return int(body["metadata"]["resourceVersion"])


def needs(body: Body) -> bool:
    return bool(body["needs"])


@dataclass
class FakeReconcile:
    """Records every call; can hold calls on a gate, return chosen results, or raise."""

    results: list[Result | BaseException] = field(default_factory=list)
    """Returned (or raised) in order; Result() once they run out."""
    results_for: dict[Key, list[Result | BaseException]] = field(default_factory=dict)
    """Like `results`, for one key only (taken before `results`)."""
    gate: asyncio.Event | None = None
    """When set up, each call waits for it (a slow helm operation you release)."""
    calls: asyncio.Queue[tuple[Key, Body]] = field(default_factory=asyncio.Queue)
    history: list[tuple[Key, int]] = field(default_factory=list)
    cancelled: list[Key] = field(default_factory=list)
    active: dict[Key, int] = field(default_factory=dict)
    max_active: dict[Key, int] = field(default_factory=dict)
    max_total: int = 0

    async def __call__(self, key: Key, body: Body) -> Result:
        self.active[key] = self.active.get(key, 0) + 1
        self.max_active[key] = max(self.max_active.get(key, 0), self.active[key])
        self.max_total = max(self.max_total, sum(self.active.values()))
        self.history.append((key, rv_of(body)))
        self.calls.put_nowait((key, body))
        try:
            if self.gate is not None:
                await self.gate.wait()
            queue = self.results_for.get(key) or self.results
            outcome = queue.pop(0) if queue else Result()
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.active[key] -= 1

    async def next_call(self, within: float = SOON) -> tuple[Key, Body]:
        """The next reconcile to start; fails the test if none starts in time."""
        return await asyncio.wait_for(self.calls.get(), within)

    async def no_call(self, within: float = QUIET) -> None:
        """Fails the test if a reconcile starts in the next `within` seconds."""
        try:
            key, body = await asyncio.wait_for(self.calls.get(), within)
        except TimeoutError:
            return
        pytest.fail(f"unexpected reconcile of {key} at resourceVersion {rv_of(body)}")


Scenario = Callable[[Controller, FakeReconcile], Coroutine[Any, Any, None]]


def run(
    scenario: Scenario, *, reconcile: FakeReconcile | None = None, logger: logging.Logger | None = None
) -> None:
    """Run one scenario on a fresh loop, with a controller that is closed afterwards."""

    async def main() -> None:
        fake = reconcile or FakeReconcile()
        controller = Controller(NAME, fake, needs=needs, logger=logger)
        try:
            await asyncio.wait_for(scenario(controller, fake), timeout=2)
        finally:
            await asyncio.wait_for(controller.close(), timeout=SOON)

    asyncio.run(main())


def worker_task(key: Key) -> asyncio.Task[Any] | None:
    wanted = f"{NAME}:{key[0]}/{key[1]}"
    return next((t for t in asyncio.all_tasks() if t.get_name() == wanted), None)


async def settle() -> None:
    """Let every ready task take its next step."""
    for _ in range(5):
        await asyncio.sleep(0)


# --- watch events and `needs` -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "first_needs",
    [pytest.param(True, id="body asks for it"), pytest.param(False, id="body says it is reconciled")],
)
def test_first_observe_reconciles_once_immediately(first_needs: bool) -> None:
    # A restarted operator looks at every object once, whatever its status says.
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1, needs=first_needs))
        key, body = await r.next_call()
        assert key == A
        assert rv_of(body) == 1
        await r.no_call()
        assert r.history == [(A, 1)]

    run(scenario)


@pytest.mark.parametrize(
    ("second_needs", "reconciled"),
    [
        pytest.param(False, False, id="echo of own write is not reconciled"),
        pytest.param(True, True, id="a change that needs it is reconciled"),
    ],
)
def test_second_observe_reconciles_only_when_needed(second_needs: bool, reconciled: bool) -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        await settle()
        c.observe(obj(A, 2, needs=second_needs))
        if reconciled:
            key, body = await r.next_call()
            assert (key, rv_of(body)) == (A, 2)
        else:
            await r.no_call()
        assert c.latest()[A]["metadata"]["resourceVersion"] == "2", "the newest body is kept either way"

    run(scenario)


def test_result_without_requeue_waits_for_an_event() -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        await r.no_call(QUIET)
        c.observe(obj(A, 2))
        assert rv_of((await r.next_call())[1]) == 2

    run(scenario)


@pytest.mark.parametrize(
    "body_needs",
    [pytest.param(False, id="body does not need it"), pytest.param(True, id="body needs it too")],
)
def test_wake_forces_a_reconcile(body_needs: bool) -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        await settle()
        if not body_needs:
            c.observe(obj(A, 2, needs=False))
            await r.no_call()
        c.wake([A])
        key, body = await r.next_call()
        assert key == A
        assert rv_of(body) == (1 if body_needs else 2), "the newest body known"
        await r.no_call()

    run(scenario)


def test_wake_ignores_unknown_keys() -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.wake([("apps", "unknown")])
        c.observe(obj(A, 1))
        await r.next_call()
        c.wake(iter([("other", "x")]))
        await r.no_call()

    run(scenario)


def test_wake_during_a_reconcile_runs_another_after_it() -> None:
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        c.wake([A])
        await r.no_call()
        assert r.active[A] == 1, "never two at once"
        gate.set()
        key, body = await r.next_call()
        assert (key, rv_of(body)) == (A, 1)

    run(scenario, reconcile=FakeReconcile(gate=gate))


# --- concurrency and the newest body -----------------------------------------------------------------


def test_one_key_never_overlaps_while_keys_run_concurrently() -> None:
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        assert (await r.next_call())[0] == A
        c.observe(obj(A, 2))  # needs a reconcile, but A's first one is still running
        c.observe(obj(B, 1))
        key, _ = await r.next_call()
        assert key == B, "B does not wait for A"
        assert r.active == {A: 1, B: 1}
        await r.no_call()
        gate.set()
        key, body = await r.next_call()
        assert (key, rv_of(body)) == (A, 2)
        await r.no_call()
        assert r.max_active == {A: 1, B: 1}
        assert r.max_total == 2

    run(scenario, reconcile=FakeReconcile(gate=gate))


def test_many_keys_reconcile_concurrently() -> None:
    gate = asyncio.Event()
    keys = [("apps", f"app-{i}") for i in range(10)]

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        for key in keys:
            c.observe(obj(key, 1))
        started = {(await r.next_call())[0] for _ in keys}
        assert started == set(keys)
        assert r.max_total == len(keys)
        gate.set()

    run(scenario, reconcile=FakeReconcile(gate=gate))


def test_newest_body_is_reconciled_after_a_slow_reconcile() -> None:
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        for rv in (2, 3, 4):
            c.observe(obj(A, rv))
            await settle()
        await r.no_call()
        gate.set()
        key, body = await r.next_call()
        assert (key, rv_of(body)) == (A, 4)
        await r.no_call()
        assert r.history == [(A, 1), (A, 4)], "intermediate bodies are skipped, not queued"

    run(scenario, reconcile=FakeReconcile(gate=gate))


def test_newest_body_decides_whether_to_reconcile() -> None:
    # An event that needed a reconcile, followed by the echo of the write that handled it.
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        c.observe(obj(A, 2, needs=True))
        c.observe(obj(A, 3, needs=False))
        gate.set()
        await r.no_call()
        assert r.history == [(A, 1)]

    run(scenario, reconcile=FakeReconcile(gate=gate))


# --- record ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("known", "incoming", "accepted", "kept"),
    [
        pytest.param(None, "5", True, "5", id="first body"),
        pytest.param("5", "6", True, "6", id="newer"),
        pytest.param("5", "3", False, "5", id="older is stale"),
        pytest.param("5", "5", False, "5", id="same version is an echo"),
        pytest.param("9", "10", True, "10", id="compared as numbers not text"),
        pytest.param("5", "not-a-number", False, "5", id="unreadable version counts as zero"),
        pytest.param(None, None, True, None, id="no version at all"),
    ],
)
def test_record(known: str | None, incoming: str | None, accepted: bool, kept: str | None) -> None:
    def body(rv: str | None) -> Body:
        meta: dict[str, Any] = {"namespace": "apps", "name": "a"}
        if rv is not None:
            meta["resourceVersion"] = rv
        return {"metadata": meta, "needs": True}

    c = Controller(NAME, FakeReconcile(), needs=needs)
    if known is not None:
        assert c.record(body(known))
    assert c.record(body(incoming)) is accepted
    assert c.latest()[A]["metadata"].get("resourceVersion") == kept


def test_record_keeps_keys_apart() -> None:
    c = Controller(NAME, FakeReconcile(), needs=needs)
    assert c.record(obj(A, 5))
    assert c.record(obj(B, 1)), "B's lower version is not compared with A's"
    assert c.record(obj(("other", "a"), 1)), "same name, other namespace"
    assert {k: rv_of(b) for k, b in c.latest().items()} == {A: 5, B: 1, ("other", "a"): 1}


def test_stale_observe_is_ignored() -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 5))
        await r.next_call()
        c.observe(obj(A, 3))
        c.observe(obj(A, 5))
        await r.no_call()
        assert rv_of(c.latest()[A]) == 5

    run(scenario)


def test_recorded_write_is_what_the_next_reconcile_sees() -> None:
    # The reconcile feeds back its own write; the watch event for it is then only an echo.
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        assert c.record(obj(A, 7, needs=False))
        c.observe(obj(A, 7, needs=False))
        await r.no_call()
        c.wake([A])
        assert rv_of((await r.next_call())[1]) == 7

    run(scenario)


def test_key_of() -> None:
    assert key_of({"metadata": {"namespace": "apps", "name": "a"}}) == A
    assert key_of({"metadata": {"name": "cluster-scoped"}}) == ("", "cluster-scoped")
    with pytest.raises(KeyError):
        key_of({"metadata": {}})


# --- requeue -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "delay", [pytest.param(0.0, id="requeue now"), pytest.param(0.05, id="requeue after a short delay")]
)
def test_requeue_after_schedules_another_reconcile(delay: float) -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        key, body = await r.next_call()
        assert (key, rv_of(body)) == (A, 1), "requeued without any new event"
        await r.no_call()

    run(scenario, reconcile=FakeReconcile(results=[Result(requeue_after=delay)]))


def test_requeue_after_is_not_shortened_by_an_event_that_does_not_need_it() -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        await settle()
        c.observe(obj(A, 2, needs=False))
        await r.no_call()
        c.observe(obj(A, 3, needs=True))
        assert rv_of((await r.next_call())[1]) == 3

    run(scenario, reconcile=FakeReconcile(results=[Result(requeue_after=60.0)]))


def test_requeues_repeat_until_a_plain_result() -> None:
    results: list[Result | BaseException] = [Result(requeue_after=0.01)] * 3

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        for _ in range(4):
            await r.next_call()
        await r.no_call()

    run(scenario, reconcile=FakeReconcile(results=results))


# --- cancellation, failures, forget, close -----------------------------------------------------------


def test_cancel_current_cancels_and_starts_over() -> None:
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        assert not c.cancel_current(A), "nothing in flight for an unknown key"
        c.observe(obj(A, 1))
        await r.next_call()
        await settle()
        assert c.busy(A)
        c.observe(obj(A, 2, needs=False))  # a newer body arrives while the operation runs
        assert c.cancel_current(A)
        key, body = await r.next_call()
        assert r.cancelled == [A]
        assert (key, rv_of(body)) == (A, 2), "starts over from the newest body, with no new event"
        gate.set()
        await r.no_call()
        await settle()
        assert not c.busy(A)
        assert not c.cancel_current(A), "nothing in flight once done"

    run(scenario, reconcile=FakeReconcile(gate=gate))


def test_a_second_cancel_does_not_interrupt_the_first_ones_cleanup() -> None:
    cleaned: list[Key] = []

    async def slow_to_stop(key: Key, body: Body) -> Result:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # helm marking its release failed after SIGTERM
            cleaned.append(key)
            raise
        return Result()

    async def main() -> None:
        c = Controller(NAME, slow_to_stop, needs=needs)
        try:
            c.observe(obj(A, 1))
            for _ in range(100):
                if c.busy(A):
                    break
                await asyncio.sleep(0.01)
            assert c.cancel_current(A)
            await asyncio.sleep(0.01)
            assert c.cancel_current(A), "still in flight while it cleans up"
            for _ in range(100):
                if cleaned:
                    break
                await asyncio.sleep(0.01)
            assert cleaned == [A]
        finally:
            await asyncio.wait_for(c.close(), timeout=SOON)

    asyncio.run(main())


def test_exception_is_logged_and_retried_later_not_immediately(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("kubemart.test-controller")

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        await r.next_call()
        await r.no_call(QUIET)
        assert r.history == [(A, 1)], "backs off instead of spinning"
        # The worker survived the failure: an event that needs a reconcile still gets one.
        c.observe(obj(A, 2))
        assert rv_of((await r.next_call())[1]) == 2

    with caplog.at_level(logging.ERROR, logger=logger.name):
        run(scenario, reconcile=FakeReconcile(results=[RuntimeError("boom")]), logger=logger)
    (record,) = [rec for rec in caplog.records if rec.name == logger.name]
    assert record.levelno == logging.ERROR
    assert "apps/a" in record.getMessage()
    assert "failed unexpectedly" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_forget_stops_the_worker() -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        c.observe(obj(B, 1))
        assert {(await r.next_call())[0] for _ in range(2)} == {A, B}
        worker = worker_task(A)
        assert worker is not None
        c.forget(A)
        await asyncio.wait_for(asyncio.gather(worker, return_exceptions=True), SOON)
        assert worker.cancelled()
        assert A not in c.latest()
        assert B in c.latest()
        c.wake([A])
        await r.no_call(0.5)  # neither the wake nor the pending requeue reconciles A
        assert worker_task(B) is not None, "other keys keep their worker"
        c.forget(("apps", "never-seen"))  # forgetting an unknown key is harmless

    run(scenario, reconcile=FakeReconcile(results_for={A: [Result(requeue_after=0.3)]}))


def test_forget_cancels_the_reconcile_in_flight_and_observe_starts_afresh() -> None:
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 5))
        await r.next_call()
        await settle()
        c.forget(A)
        await settle()
        assert r.cancelled == [A]
        assert not c.busy(A)
        gate.set()
        # A new object of the same name: a lower version is fine, and it is reconciled at once.
        c.observe(obj(A, 1, needs=False))
        assert rv_of((await r.next_call())[1]) == 1

    run(scenario, reconcile=FakeReconcile(gate=gate))


def test_forget_then_observe_keeps_tracking_the_new_reconcile() -> None:
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 5))
        await r.next_call()
        await settle()
        c.forget(A)
        c.observe(obj(A, 9))
        assert rv_of((await r.next_call())[1]) == 9
        await settle()
        assert c.busy(A), "the new object's reconcile is in flight"
        assert c.cancel_current(A)

    run(scenario, reconcile=FakeReconcile(gate=gate))


@dataclass
class SlowToCancel(FakeReconcile):
    """A reconcile that, like pyhelm3 terminating helm and waiting for it, takes time to stop."""

    async def __call__(self, key: Key, body: Body) -> Result:
        try:
            return await super().__call__(key, body)
        except asyncio.CancelledError:
            self.active[key] = self.active.get(key, 0) + 1
            try:
                await asyncio.sleep(0.05)  # the subprocess exits
            finally:
                self.active[key] -= 1
            raise


def test_forget_then_observe_does_not_overlap_a_reconcile_still_stopping() -> None:
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 5))
        await r.next_call()
        await settle()
        c.forget(A)
        c.observe(obj(A, 9))
        await r.next_call()
        assert r.max_active[A] == 1

    run(scenario, reconcile=SlowToCancel(gate=gate))


def test_close_stops_all_workers() -> None:
    gate = asyncio.Event()

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        c.observe(obj(B, 1))
        for _ in range(2):
            await r.next_call()
        workers = [worker_task(A), worker_task(B)]
        assert all(w is not None for w in workers)
        await asyncio.wait_for(c.close(), SOON)
        assert all(w is not None and w.done() for w in workers)
        assert sorted(r.cancelled) == [A, B], "reconciles in flight are cancelled"
        c.observe(obj(A, 2))
        c.observe(obj(("apps", "new"), 1))
        await r.no_call()
        assert worker_task(A) is None
        assert worker_task(("apps", "new")) is None

    run(scenario, reconcile=FakeReconcile(gate=gate))


def test_close_with_nothing_running() -> None:
    async def scenario(c: Controller, r: FakeReconcile) -> None:
        await c.close()
        await c.close()

    run(scenario)


# --- backoff and jitter ------------------------------------------------------------------------------

SAMPLES = 200


@pytest.mark.parametrize(
    ("failures", "nominal"),
    [
        pytest.param(0, 2.0, id="no failure yet"),
        pytest.param(1, 2.0, id="first failure"),
        pytest.param(2, 4.0, id="second"),
        pytest.param(3, 8.0, id="third"),
        pytest.param(5, 32.0, id="fifth"),
        pytest.param(8, 256.0, id="eighth"),
        pytest.param(9, 300.0, id="capped"),
        pytest.param(60, 300.0, id="long capped"),
    ],
)
def test_backoff_bounds(failures: int, nominal: float) -> None:
    values = [backoff(failures) for _ in range(SAMPLES)]
    assert all(nominal * 0.8 <= v <= nominal * 1.2 for v in values), (min(values), max(values))
    assert len(set(values)) > 1, "jittered"


@pytest.mark.parametrize(
    ("failures", "base", "cap", "nominal"),
    [
        pytest.param(1, 0.5, 10.0, 0.5, id="custom base"),
        pytest.param(4, 0.5, 10.0, 4.0, id="custom base grows"),
        pytest.param(10, 0.5, 10.0, 10.0, id="custom cap"),
    ],
)
def test_backoff_custom_base_and_cap(failures: int, base: float, cap: float, nominal: float) -> None:
    for _ in range(SAMPLES):
        assert nominal * 0.8 <= backoff(failures, base=base, cap=cap) <= nominal * 1.2


def test_backoff_after_very_many_failures_stays_capped() -> None:
    assert 240.0 <= backoff(2000) <= 360.0


@pytest.mark.parametrize(
    ("seconds", "fraction"),
    [
        pytest.param(10.0, 0.1, id="default spread"),
        pytest.param(600.0, 0.1, id="resync interval"),
        pytest.param(1.0, 0.5, id="wide spread"),
    ],
)
def test_jittered_bounds(seconds: float, fraction: float) -> None:
    values = [jittered(seconds, fraction) for _ in range(SAMPLES)]
    assert all(seconds * (1 - fraction) <= v <= seconds * (1 + fraction) for v in values)
    assert len(set(values)) > 1


@pytest.mark.parametrize(
    ("seconds", "fraction", "expected"),
    [
        pytest.param(10.0, 0.0, 10.0, id="no spread"),
        pytest.param(0.0, 0.1, 0.0, id="zero stays zero"),
    ],
)
def test_jittered_exact(seconds: float, fraction: float, expected: float) -> None:
    assert jittered(seconds, fraction) == expected


def test_jittered_default_fraction_is_ten_percent() -> None:
    assert all(9.0 <= jittered(10.0) <= 11.0 for _ in range(SAMPLES))


# --- the catch-all and backoff results ----------------------------------------------------------------


def test_unexpected_error_is_reported_to_the_object_and_backs_off_exponentially(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = logging.getLogger("kubemart.test-catch-all")
    reported: list[tuple[Key, str]] = []
    delays: list[float] = []
    import kubemart.runtime.controller as controller_module

    # Record the delays the controller asks for, and make them short enough to watch.
    real = controller_module.backoff

    def recording(failures: int, **kw: float) -> float:
        delays.append(real(failures, **kw))
        return 0.01

    monkeypatch.setattr(controller_module, "backoff", recording)

    async def on_error(key: Key, body: Body, exc: Exception) -> None:
        reported.append((key, str(exc)))

    async def main() -> None:
        fake = FakeReconcile(results=[RuntimeError("boom")] * 4)
        c = Controller(NAME, fake, needs=needs, logger=logger, on_error=on_error)
        try:
            c.observe(obj(A, 1))
            for _ in range(5):
                await fake.next_call()
        finally:
            await c.close()

    with caplog.at_level(logging.WARNING, logger=logger.name):
        asyncio.run(main())
    assert reported == [(A, "boom")] * 4, "each failure ends as a status"
    assert delays[0] < delays[1] < delays[2], "exponential, not a fixed interval"
    tracebacks = [r for r in caplog.records if r.name == logger.name and r.exc_info]
    assert len(tracebacks) == 1, "the same error's traceback is logged once"
    again = [r for r in caplog.records if r.name == logger.name and "failed again" in r.getMessage()]
    assert len(again) == 3


def test_backoff_results_grow_and_any_other_result_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    import kubemart.runtime.controller as controller_module

    asked: list[int] = []

    def recording(failures: int, **_: float) -> float:
        asked.append(failures)
        return 0.01

    monkeypatch.setattr(controller_module, "backoff", recording)

    async def scenario(c: Controller, r: FakeReconcile) -> None:
        c.observe(obj(A, 1))
        for _ in range(5):
            await r.next_call()

    run(
        scenario,
        reconcile=FakeReconcile(
            results=[
                Result(backoff=True),
                Result(backoff=True),
                Result(requeue_after=0.0),
                Result(backoff=True),
            ]
        ),
    )
    assert asked == [1, 2, 1]
