"""Who may hold the Lease: the holder, anyone when it is free, anyone once it was not renewed in time."""

from __future__ import annotations

import pytest

from kubemart.runtime.leader import Observed, may_take


def seen(holder: str, *, at: float = 100.0, duration: float = 15.0) -> Observed:
    return Observed(holder=holder, renew_time="t", duration=duration, seen_at=at)


@pytest.mark.parametrize(
    ("observed", "now", "expected"),
    [
        pytest.param(seen("me"), 200.0, True, id="the holder renews"),
        pytest.param(seen(""), 100.0, True, id="released: take it at once"),
        pytest.param(seen("other"), 114.9, False, id="held and renewed recently"),
        pytest.param(seen("other"), 115.0, True, id="not renewed for a whole lease duration"),
        pytest.param(seen("other", duration=1), 101.0, True, id="released with a 1s lease"),
    ],
)
def test_may_take(observed: Observed, now: float, expected: bool) -> None:
    assert may_take(observed, "me", now) is expected
