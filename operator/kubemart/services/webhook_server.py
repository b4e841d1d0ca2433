"""The operator's webhook endpoint: POST /webhooks/payment, HMAC-verified (docs/payment-gateway.md).

A valid webhook only wakes the Payment of its session, which then reads the session from the
gateway: nothing in the webhook's body is trusted, so a replay has no second effect.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubemart.domain.webhooks import BadSignature, verify_signature
from kubemart.runtime import logs
from kubemart.runtime.bounded_http import BoundedServer, ServerLimits

log = logging.getLogger("kubemart.webhooks")

SecretFor = Callable[[str], Awaitable[list[tuple[object, bytes]]]]
"""For a session id: the (payment key, webhook secret) pairs of the Payments that follow it."""


class WebhookServer:
    def __init__(self, secrets_for: SecretFor, wake: Callable[[list[object]], None]) -> None:
        self.secrets_for = secrets_for
        self.wake = wake
        self._server: BoundedServer | None = None

    async def start(self, port: int, host: str = "0.0.0.0", limits: ServerLimits | None = None) -> None:
        """Serve on `host`:`port`, bounded (connections, deadlines, a 64 KiB body: runtime.bounded_http)."""
        self._server = BoundedServer(name="webhooks", limits=limits or ServerLimits())
        self._server.app.router.add_post("/webhooks/payment", self.payment)
        await self._server.start(host, port)

    @property
    def running(self) -> bool:
        """Whether it listens (for the runtime view)."""
        return self._server is not None

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

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
