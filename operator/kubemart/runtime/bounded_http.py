"""aiohttp servers that unauthenticated clients cannot exhaust: a connection cap, deadlines, body bounds.

The metrics and webhook ports answer anyone who can reach them. aiohttp by itself accepts any number
of connections and keeps an idle one for an hour, so a client holding thousands of them open costs
the operator a file descriptor and a task each, and ends in "too many open files". Here:

- At most `max_connections` are open per server. A new connection beyond that closes the idle one
  that has waited longest (connected, or answered, and not sending a request now), so a flood of idle
  connections cannot keep a real client out; when every connection is in a request, the new one gets
  `503` and is closed.
- A connection must send a complete request head within `idle_timeout` of connecting or of its last
  response, else it is closed: aiohttp's keep-alive timer, which trickled bytes do not extend, so a
  slowloris client is closed as surely as an idle one.
- A request's body must arrive within `body_timeout` (`408`) and be at most `max_body_bytes` (`413`);
  it is read before the handler runs, so no handler waits on a slow client.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from kubemart.runtime import metrics
from kubemart.runtime.settings import Settings

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 38\r\n\r\n"
    b"too many connections; try again later\n"
)


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int = 256
    idle_timeout: float = 10.0
    body_timeout: float = 10.0
    max_body_bytes: int = 64 * 1024


def limits_from(settings: Settings, *, max_body_bytes: int = 64 * 1024) -> ServerLimits:
    return ServerLimits(
        max_connections=settings.http_max_connections,
        idle_timeout=settings.http_idle_timeout,
        body_timeout=settings.http_body_timeout,
        max_body_bytes=max_body_bytes,
    )


class _Connection(asyncio.Protocol):
    """Counts itself in and out of its server and hands everything else to aiohttp's protocol."""

    def __init__(self, server: BoundedServer, inner: asyncio.Protocol) -> None:
        self.server = server
        self.inner: asyncio.Protocol | None = inner
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # TCP
        self.transport = transport
        if not self.server._admit(self):
            self.inner = None
            transport.write(_BUSY)
            transport.close()
            return
        assert self.inner is not None
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._release(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BoundedServer:
    """An aiohttp application served under `ServerLimits`: add routes to `app`; `name` labels its metrics."""

    def __init__(self, *, name: str, limits: ServerLimits) -> None:
        self.name = name
        self.limits = limits
        self._open: dict[asyncio.Transport, _Connection] = {}
        """Oldest first: a connection moves to the end when it finishes a request."""
        self.app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[self._guard])
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def start(
        self, host: str | None = None, port: int | None = None, *, sock: socket.socket | None = None
    ) -> None:
        """Listen on `host`:`port`, or on `sock`, a socket bound already (cli.py binds before kopf starts)."""
        # aiohttp's keep-alive timer starts at connect and after each response, and closes a
        # connection that has not sent a whole request head by then: our idle and head deadline.
        self._runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=self.limits.idle_timeout)
        await self._runner.setup()
        factory = self._runner.server
        assert factory is not None
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(lambda: _Connection(self, factory()), sock=sock)
        else:
            self._server = await loop.create_server(
                lambda: _Connection(self, factory()), host, port or 0, reuse_address=True, backlog=128
            )

    @property
    def port(self) -> int:
        """The port listened on (useful when started on port 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for transport in list(self._open):
            transport.abort()

    # --- connections ---------------------------------------------------------------------------

    def _admit(self, conn: _Connection) -> bool:
        assert conn.transport is not None
        if len(self._open) >= self.limits.max_connections:
            victim = next((c for c in self._open.values() if not c.busy), None)
            if victim is None:
                metrics.HTTP_SHED.labels(self.name, "refused").inc()
                return False
            self._forget(victim)
            assert victim.transport is not None
            victim.transport.abort()
            metrics.HTTP_SHED.labels(self.name, "evicted").inc()
        self._open[conn.transport] = conn
        metrics.HTTP_CONNECTIONS.labels(self.name).set(len(self._open))
        return True

    def _release(self, conn: _Connection) -> None:
        if conn.transport is not None and self._open.get(conn.transport) is conn:
            self._forget(conn)

    def _forget(self, conn: _Connection) -> None:
        assert conn.transport is not None
        del self._open[conn.transport]
        metrics.HTTP_CONNECTIONS.labels(self.name).set(len(self._open))

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the connection busy, and reads the body with a deadline before the handler runs."""
        transport = request.transport
        conn = self._open.get(transport) if transport is not None else None
        if conn is not None:
            conn.busy = True
        try:
            try:
                async with asyncio.timeout(self.limits.body_timeout):
                    await request.read()  # kept by aiohttp: the handler's read() returns it
            except TimeoutError:
                return _close_after(web.Response(status=408, text="the request body was not sent in time\n"))
            except web.HTTPRequestEntityTooLarge:
                limit = self.limits.max_body_bytes
                return _close_after(
                    web.Response(status=413, text=f"the request body is over {limit} bytes\n")
                )
            return await handler(request)
        finally:
            if conn is not None and transport is not None and self._open.get(transport) is conn:
                conn.busy = False
                self._open[transport] = self._open.pop(transport)  # now the most recently active


def _close_after(response: web.Response) -> web.Response:
    response.force_close()
    return response
