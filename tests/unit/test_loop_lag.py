"""The event loop lag monitor: a blocked loop shows on /metrics' lag histogram and last-minute maximum."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from kubemart.runtime.loop_lag import LoopLagMonitor, WindowMax


@pytest.mark.parametrize(
    ("samples", "now", "expected"),
    [
        pytest.param([], 0.0, 0.0, id="nothing recorded"),
        pytest.param([(0.0, 0.2)], 1.0, 0.2, id="one sample"),
        pytest.param([(0.0, 0.2), (1.0, 0.5), (2.0, 0.1)], 2.0, 0.5, id="largest in window"),
        pytest.param([(0.0, 3.0), (50.0, 0.1)], 61.0, 0.1, id="large one expired"),
        pytest.param([(0.0, 3.0), (50.0, 0.1)], 59.0, 3.0, id="large one still in window"),
        pytest.param([(0.0, 1.0), (10.0, 1.0)], 65.0, 1.0, id="equal later sample kept"),
        pytest.param([(0.0, 1.0)], 200.0, 0.0, id="all expired"),
    ],
)
def test_window_max(samples: list[tuple[float, float]], now: float, expected: float) -> None:
    window = WindowMax(60.0)
    for at, value in samples:
        window.record(at, value)
    assert window.max(now) == expected


def _sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _over_half_a_second() -> float:
    return _sample("kubemart_event_loop_lag_seconds_count") - _sample(
        "kubemart_event_loop_lag_seconds_bucket", le="0.5"
    )


def test_a_blocked_loop_is_measured() -> None:
    async def main() -> None:
        monitor = LoopLagMonitor(interval=0.05)
        monitor.start()
        try:
            over_half = _over_half_a_second()
            await asyncio.sleep(0.2)
            time.sleep(0.7)  # noqa: ASYNC251 - a step that holds the loop, as a big parse on it would
            await asyncio.sleep(0.2)
            assert _sample("kubemart_event_loop_lag_max_seconds") >= 0.6
            assert _over_half_a_second() == over_half + 1
        finally:
            await monitor.close()

    asyncio.run(main())
