"""The operator's webhook endpoint: POST /webhooks/payment, HMAC-verified (docs/payment-gateway.md).

A valid webhook only wakes the Payment of its session, which then reads the session from the
gateway: nothing in the webhook's body is trusted, so a replay has no second effect.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubemart.domain.webhooks import BadSignature, verify_signature
from kubemart.runtime import logs

log = logging.getLogger("kubemart.webhooks")

SecretFor = Callable[[str], Awaitable[list[tuple[object, bytes]]]]
"""For a session id: the (payment key, webhook secret) pairs of the Payments that follow it."""


class WebhookServer:
    def __init__(self, secrets_for: SecretFor, wake: Callable[[list[object]], None]) -> None:
        self.secrets_for = secrets_for
        self.wake = wake
        self._runner: web.AppRunner | None = None

    async def start(self, port: int) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/webhooks/payment", self.payment)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "0.0.0.0", port).start()

    async def start_on(self, sock: socket.socket) -> None:
        """Serve on a socket bound before the operator started (cli.py), so a busy port fails at once."""
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/webhooks/payment", self.payment)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    @property
    def running(self) -> bool:
        """Whether it listens (for the runtime view)."""
        return self._runner is not None

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def payment(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            session = str(json.loads(body)["session"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'the body is not {"session": ...}'}, status=400)
        header = request.headers.get("Kubemart-Signature")
        matched = []
        for key, secret in await self.secrets_for(session):
            try:
                verify_signature(header, secret, body, now=time.time())
            except BadSignature as exc:
                about = logs.ref("Payment", *key) if isinstance(key, tuple) else {}
                log.warning("webhook for session %s refused: %s", session, exc, extra=about)
                continue
            matched.append(key)
        if not matched:
            return web.json_response({"error": "signature refused"}, status=401)
        self.wake(matched)
        return web.Response(status=204)
