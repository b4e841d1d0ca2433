"""The metrics and webhook servers against hostile clients, on real sockets on 127.0.0.1.

Floods of idle connections, slowloris heads, slow and large bodies: each is bounded, and a real client
is still answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from kubemart.runtime.bounded_http import BoundedServer, ServerLimits
from kubemart.runtime.http_server import RuntimeServer
from kubemart.runtime.metrics import HTTP_SHED as SHED
from kubemart.runtime.runtime_state import Filters
from kubemart.services.webhook_server import WebhookServer


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _state(_: Filters) -> dict[str, Any]:
    return {"apps": []}


@contextlib.asynccontextmanager
async def runtime_server(limits: ServerLimits, host: str = "127.0.0.1") -> AsyncIterator[int]:
    server, port = RuntimeServer(_state), _port()
    await server.start(port, host=host, limits=limits)
    try:
        yield port
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def bounded(
    limits: ServerLimits, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[BoundedServer]:
    server = BoundedServer(name="test", limits=limits)
    server.app.router.add_route("*", "/", handler)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.close()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closes the connection (read returns EOF or the connection resets)."""
    start = time.monotonic()
    with contextlib.suppress(ConnectionError):
        while await asyncio.wait_for(reader.read(4096), timeout=seconds):
            pass
    return time.monotonic() - start


def test_a_flood_of_idle_connections_does_not_keep_metrics_from_a_real_client() -> None:
    async def main() -> None:
        limits = ServerLimits(max_connections=64, idle_timeout=60)
        async with runtime_server(limits) as port:
            evicted = SHED.labels("metrics", "evicted")._value.get()
            flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2000)]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                start = time.monotonic()
                response = await client.get("/metrics", timeout=5)
                took = time.monotonic() - start
            assert response.status_code == 200
            assert "kubemart_event_loop_lag_seconds" in response.text
            assert took < 1.0, f"a real client waited {took:.2f}s"
            # The idle connections were shed, oldest first, to stay within the cap.
            assert SHED.labels("metrics", "evicted")._value.get() - evicted >= 2000 - 64
            assert await closed_within(flood[0][0], 2) < 2
            for _, writer in flood:
                writer.close()

    asyncio.run(main())


def test_when_every_connection_is_in_a_request_a_new_one_gets_503() -> None:
    async def main() -> None:
        release, all_in, entered = asyncio.Event(), asyncio.Event(), []

        async def slow(_: web.Request) -> web.Response:
            entered.append(1)
            if len(entered) == 3:
                all_in.set()
            await release.wait()
            return web.Response(text="done")

        limits = ServerLimits(max_connections=3, idle_timeout=30)
        async with bounded(limits, slow) as server, httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{server.port}/"
            busy = [asyncio.create_task(client.get(url, timeout=10)) for _ in range(3)]
            await asyncio.wait_for(all_in.wait(), timeout=5)
            async with httpx.AsyncClient() as other:
                refused = await other.get(url, timeout=5)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            release.set()
            assert [r.status_code for r in await asyncio.gather(*busy)] == [200, 200, 200]

    asyncio.run(main())


@pytest.mark.parametrize("trickle", [False, True], ids=["idle", "slowloris"])
def test_a_connection_that_sends_no_whole_request_head_is_closed_after_the_idle_timeout(
    trickle: bool,
) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        async with bounded(ServerLimits(idle_timeout=0.5), ok) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            if trickle:
                writer.write(b"GET / HTTP/1.1\r\n")

                async def drip() -> None:
                    with contextlib.suppress(ConnectionError):
                        for _ in range(100):
                            writer.write(b"X")  # one byte of a header every 50 ms: never a whole head
                            await writer.drain()
                            await asyncio.sleep(0.05)

                dripping = asyncio.create_task(drip())
            took = await closed_within(reader, 5)
            assert 0.4 < took < 1.5
            if trickle:
                dripping.cancel()
            writer.close()
            assert server.open_connections == 0

    asyncio.run(main())


def test_a_kept_alive_connection_is_closed_once_idle() -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        async with bounded(ServerLimits(idle_timeout=0.5), ok) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"ok"), timeout=5)
            assert head.startswith(b"HTTP/1.1 200")
            assert await closed_within(reader, 5) < 1.5
            writer.close()

    asyncio.run(main())


def test_a_body_that_is_slow_gets_408_and_one_too_large_gets_413() -> None:
    seen: list[bytes] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(text="ok")

    async def main() -> None:
        async with bounded(ServerLimits(body_timeout=0.5, max_body_bytes=1024), echo) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            start = time.monotonic()
            answer = await asyncio.wait_for(reader.read(4096), timeout=5)
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert time.monotonic() - start < 1.5
            writer.close()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                assert (await client.post("/", content=b"x" * 2048)).status_code == 413

                async def chunks() -> AsyncIterator[bytes]:  # chunked: no length known in advance
                    for _ in range(4):
                        yield b"x" * 512

                assert (await client.post("/", content=chunks())).status_code == 413
                assert (await client.post("/", content=b"small")).status_code == 200
            assert seen == [b"small"], "no handler ran for a refused body"

    asyncio.run(main())


def test_the_webhook_server_is_bounded_too() -> None:
    woken: list[Any] = []

    async def secrets(_: str) -> list[tuple[object, bytes]]:
        return []

    async def main() -> None:
        server, port = WebhookServer(secrets, woken.append), _port()
        await server.start(port, host="127.0.0.1", limits=ServerLimits(max_body_bytes=64 * 1024))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                big = await client.post("/webhooks/payment", content=b"[" * (70 * 1024))
                assert big.status_code == 413
        finally:
            await server.close()
        assert woken == []

    asyncio.run(main())


def _outside_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a source address
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_metrics_listen_on_loopback_unless_told_otherwise() -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address but loopback")

    async def reachable(port: int, host: str) -> bool:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        return True

    async def main() -> None:
        server, port = RuntimeServer(_state), _port()
        await server.start(port)  # the default, as `kubemart run` has it
        try:
            assert await reachable(port, "127.0.0.1")
            assert not await reachable(port, outside)
        finally:
            await server.close()
        async with runtime_server(ServerLimits(), host="0.0.0.0") as port:
            assert await reachable(port, outside)

    asyncio.run(main())
