"""Waiting on a condition with a deadline: tests never sleep blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    pass


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Call `probe` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    last_error: Exception | None = None
    while True:
        try:
            last = probe()
            last_error = None
        except Exception as exc:  # the object may not exist yet: keep probing until the deadline
            last_error = exc
        if last:
            return last
        if time.monotonic() >= deadline:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last!r}"
            raise WaitTimeout(f"{what} not met within {timeout}s ({detail})")
        time.sleep(interval)
