"""How late the event loop runs: a task that asks to wake every `interval` and measures how late it woke.

Everything the operator does shares one event loop, so any step that holds it (a large parse, a deep
copy) delays every other tenant's reconcile, the health probe and /metrics alike. The lag is shown as
`kubemart_event_loop_lag_seconds` (a histogram of every measurement) and
`kubemart_event_loop_lag_max_seconds` (the longest in the last minute).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from kubemart.runtime.metrics import LOOP_LAG, LOOP_LAG_MAX


class WindowMax:
    """Pure: the largest value recorded in the last `window` seconds (time passed in)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()
        """(time, value), values decreasing: a sample is dropped once a larger one came after it."""

    def record(self, now: float, value: float) -> None:
        while self._samples and self._samples[-1][1] <= value:
            self._samples.pop()
        self._samples.append((now, value))
        self._expire(now)

    def max(self, now: float) -> float:
        self._expire(now)
        return self._samples[0][1] if self._samples else 0.0

    def _expire(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()


class LoopLagMonitor:
    def __init__(self, *, interval: float = 0.25, window: float = 60.0) -> None:
        self.interval = interval
        self.recent = WindowMax(window)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        LOOP_LAG_MAX.set_function(lambda: self.recent.max(loop.time()))
        self._task = loop.create_task(self._run(), name="loop-lag-monitor")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            lag = max(0.0, now - asked)
            LOOP_LAG.observe(lag)
            self.recent.record(now, lag)
