"""Delivery to one sink, against a real receiver on 127.0.0.1: order, overflow, refusals, rate.

No Kubernetes here: the Notifier's queue and delivery task alone (status writes are not flushed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from kubemart.adapters.receiver import ReceiverError, Receivers
from kubemart.domain.notify import Filters, Notice
from kubemart.runtime.settings import Settings
from kubemart.services.notify import Notifier, Target
from support.receiver import Receiver

KEY = ("team-a", "hook")
FILTERS = Filters(namespace="team-a", admin=False)
SOON = 10.0


def notice(i: int, namespace: str = "team-a") -> Notice:
    return Notice(
        f"id-{i}", datetime.now(UTC), "AppInstall", namespace, f"app-{i}", "Installed", "Normal", "m"
    )


def notifier(**settings: float) -> Notifier:
    cfg = Settings(**{"notify_backoff_max": 0.2, "notify_rate": 1000.0, **settings})  # type: ignore[arg-type]
    return Notifier(None, cfg, Receivers(timeout=2.0, allow_private=True))  # type: ignore[arg-type]


async def until(check: Callable[[], object]) -> None:
    """Until `check()` is true, at most SOON seconds (asyncio.timeout fails the test past it)."""
    async with asyncio.timeout(SOON):
        while True:  # the receiver runs in threads: polled, not awaited
            if check():
                return
            await asyncio.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(hmac_key=b"k")
    yield r
    r.close()


def test_down_receiver_gets_everything_in_order_when_back(receiver: Receiver) -> None:
    async def main() -> None:
        n = notifier()
        n.configure(KEY, FILTERS, Target(receiver.url, hmac_key=b"k"), {})
        receiver.stop()
        for i in range(20):
            n.publish(notice(i))
        n.publish(notice(99, "team-b"))  # another namespace: never queued here
        await until(lambda: n.stats(KEY)["failures"] >= 2)  # type: ignore[index]
        receiver.start()
        await until(lambda: len(receiver.ids()) == 20)
        assert receiver.ids() == [f"id-{i}" for i in range(20)]
        assert all(r.signed for r in receiver.events())
        stats = n.stats(KEY)
        assert stats is not None
        assert stats["delivered"] == 20
        assert stats["failures"] == 0
        assert stats["lastFailure"]["message"], stats
        await n.close()

    asyncio.run(main())


def test_a_full_queue_drops_the_oldest_and_counts_them(receiver: Receiver) -> None:
    async def main() -> None:
        n = notifier(notify_queue_size=5)
        n.configure(KEY, FILTERS, Target(receiver.url), {"delivered": 7})
        receiver.stop()
        for i in range(12):
            n.publish(notice(i))
        receiver.start()
        await until(lambda: n.stats(KEY)["queued"] == 0)  # type: ignore[index]
        got = receiver.ids()
        assert got[-5:] == [f"id-{i}" for i in range(7, 12)], got
        stats = n.stats(KEY)
        assert stats is not None
        assert stats["dropped"] + len(got) == 12, stats
        assert stats["delivered"] == 7 + len(got), "counts carry on from the status"
        await n.close()

    asyncio.run(main())


def test_a_receiver_refusing_for_good_drops_that_event_and_goes_on(receiver: Receiver) -> None:
    async def main() -> None:
        n = notifier()
        n.configure(KEY, FILTERS, Target(receiver.url.replace("/hook", "/nothing")), {})
        receiver.token = "expected"  # every request without it: 401, which is retried
        n.publish(notice(1))
        await until(lambda: receiver.refused >= 2)
        assert n.stats(KEY)["queued"] == 1  # type: ignore[index]
        n.configure(KEY, FILTERS, Target(receiver.url, token="expected"), {})  # the Secret was fixed
        await until(lambda: receiver.ids() == ["id-1"])
        await n.close()

    asyncio.run(main())


def test_deliveries_are_rate_limited(receiver: Receiver) -> None:
    async def main() -> None:
        n = notifier(notify_rate=20.0)
        n.configure(KEY, FILTERS, Target(receiver.url), {})
        started = time.monotonic()
        for i in range(11):
            n.publish(notice(i))
        await until(lambda: len(receiver.ids()) == 11)
        assert time.monotonic() - started >= 0.45, "11 at 20 a second take at least half a second"
        await n.close()

    asyncio.run(main())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254"])
def test_a_tenants_url_cannot_reach_the_operators_own_network(receiver: Receiver, host: str) -> None:
    async def main() -> None:
        receivers = Receivers(timeout=2.0, allow_private=False)
        with pytest.raises(ReceiverError) as caught:
            await receivers.post(f"http://{host}:{receiver.port}/hook", {}, b"{}")
        assert caught.value.reason == "AddressNotAllowed"
        assert not caught.value.retryable
        await receivers.close()

    asyncio.run(main())
    assert receiver.ids() == [], "nothing was sent"


def test_a_redirect_is_not_followed_and_a_5xx_is_retried(receiver: Receiver) -> None:
    async def main() -> None:
        n = notifier()
        n.configure(KEY, FILTERS, Target(receiver.url), {})
        receiver.answer = 302
        n.publish(notice(1))
        await until(lambda: n.stats(KEY)["dropped"] == 1)  # type: ignore[index]
        assert len(receiver.ids()) == 1, "asked once, the Location not followed"
        assert "redirect" in n.stats(KEY)["lastFailure"]["message"]  # type: ignore[index]
        receiver.answer = 503
        n.publish(notice(2))
        await until(lambda: len(receiver.ids()) >= 3)  # the same Event again
        receiver.answer = 202
        await until(lambda: n.stats(KEY)["delivered"] == 1)  # type: ignore[index]
        assert set(receiver.ids()[1:]) == {"id-2"}
        await n.close()

    asyncio.run(main())
