"""The metrics port: /metrics (Prometheus), /runtime/state (JSON) and /runtime/dashboard (HTML).

One aiohttp server inside the operator's event loop, so a request reads the reconcile loops' bodies
where they are, with no thread and no API call. Everything here is read-only, and anyone who reaches
the port may ask, so it listens on loopback unless told otherwise and is bounded (runtime.bounded_http).
It also runs the event loop lag monitor whose figures it shows.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from collections.abc import Callable
from dataclasses import replace
from importlib.resources import files
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from kubemart.runtime.bounded_http import BoundedServer, ServerLimits
from kubemart.runtime.loop_lag import LoopLagMonitor
from kubemart.runtime.runtime_state import Filters

StateFn = Callable[[Filters], dict[str, Any]]


def dashboard_page() -> str:
    return files("kubemart.runtime").joinpath("dashboard.html").read_text(encoding="utf-8")


def content_security_policy(page: str) -> str:
    """Only the page's own inline script (by its hash) and style run; it may fetch only from here."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in re.findall(r"<script>(.*?)</script>", page, re.S)
    )
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class RuntimeServer:
    def __init__(self, state: StateFn) -> None:
        self.state = state
        self._page = dashboard_page()
        self._headers = {
            "Content-Security-Policy": content_security_policy(self._page),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
        self._server: BoundedServer | None = None
        self._lag = LoopLagMonitor()

    async def start(self, port: int, host: str = "127.0.0.1", limits: ServerLimits | None = None) -> None:
        # Only GETs are served: no request needs a body.
        limits = replace(limits or ServerLimits(), max_body_bytes=1024)
        self._server = BoundedServer(name="metrics", limits=limits)
        self._server.app.router.add_get("/metrics", self.metrics)
        self._server.app.router.add_get("/runtime/state", self.runtime_state)
        self._server.app.router.add_get("/runtime/dashboard", self.dashboard)
        await self._server.start(host, port)
        self._lag.start()

    async def start_on(self, sock: socket.socket, limits: ServerLimits | None = None) -> None:
        """Serve on a socket bound before the operator started (cli.py), so a busy port fails at once."""
        limits = replace(limits or ServerLimits(), max_body_bytes=1024)
        self._server = BoundedServer(name="metrics", limits=limits)
        self._server.app.router.add_get("/metrics", self.metrics)
        self._server.app.router.add_get("/runtime/state", self.runtime_state)
        self._server.app.router.add_get("/runtime/dashboard", self.dashboard)
        await self._server.start(sock=sock)
        self._lag.start()

    async def close(self) -> None:
        await self._lag.close()
        if self._server is not None:
            await self._server.close()
            self._server = None

    async def metrics(self, _: web.Request) -> web.Response:
        # Collectors read the bodies the operator holds: cheap, and on this loop, so no locking.
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def runtime_state(self, request: web.Request) -> web.Response:
        body = self.state(Filters.from_query(request.query))
        return web.json_response(
            body, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        )

    async def dashboard(self, _: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html", charset="utf-8", headers=self._headers)
