"""The operator's webhook endpoint: POST /webhooks/payment, HMAC-verified (docs/payment-gateway.md).

A valid webhook only wakes the Payment of its session, which then reads the session from the
gateway: nothing in the webhook's body is trusted, so a replay has no second effect. The order
is the security: bound the body (413), check the signature on the raw bytes against the secrets
held in memory (401, with no API read and nothing parsed), and only then parse it (400).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import Counter

from kubemart.domain import gateway_protocol as protocol
from kubemart.domain import webhooks
from kubemart.runtime.bounded_http import BoundedServer, ServerLimits
from kubemart.runtime.controller import Key
from kubemart.services.webhook_secrets import WebhookSecrets

log = logging.getLogger("kubemart.webhooks")

MAX_BODY = 16 * 1024
WEBHOOKS = Counter(
    "kubemart_webhooks",
    "Payment webhooks received, by result (accepted, unauthenticated, malformed, too_large).",
    ["result"],
)


def _answer(result: str, status: int, error: str | None = None) -> web.Response:
    WEBHOOKS.labels(result).inc()
    if error is None:
        return web.Response(status=status)
    return web.json_response({"error": error}, status=status)


class WebhookServer:
    def __init__(self, secrets: WebhookSecrets, wake: Callable[[list[Key]], None]) -> None:
        self.secrets = secrets
        self.wake = wake
        self._server: BoundedServer | None = None

    async def start(self, port: int, host: str = "0.0.0.0", limits: ServerLimits | None = None) -> None:
        """Serve on `host`:`port`, bounded (connections, deadlines, a 64 KiB body: runtime.bounded_http)."""
        self._server = BoundedServer(name="webhooks", limits=limits or ServerLimits())
        self._server.app.router.add_post("/webhooks/payment", self.payment)
        await self._server.start(host, port)

    async def start_on(self, sock: socket.socket, limits: ServerLimits | None = None) -> None:
        """Serve on a socket bound before the operator started (cli.py), so a busy port fails at once."""
        self._server = BoundedServer(name="webhooks", limits=limits or ServerLimits())
        self._server.app.router.add_post("/webhooks/payment", self.payment)
        await self._server.start(sock=sock)

    @property
    def running(self) -> bool:
        """Whether it listens (for the runtime view)."""
        return self._server is not None

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    async def payment(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY:
            return _answer("too_large", 413, f"the body is larger than {MAX_BODY} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _answer("too_large", 413, f"the body is larger than {MAX_BODY} bytes")
        if len(body) > MAX_BODY:
            return _answer("too_large", 413, f"the body is larger than {MAX_BODY} bytes")
        try:
            sources = self.secrets.signers(request.headers.get(webhooks.HEADER), body, now=time.time())
        except webhooks.BadSignature as exc:
            # Anyone can send these: counted, logged at debug only, so that they cannot flood the log.
            log.debug("webhook refused: %s", exc)
            return _answer("unauthenticated", 401, "signature refused")
        try:
            message = protocol.parse(protocol.Webhook, body, max_bytes=MAX_BODY)
        except protocol.InvalidMessage as exc:
            log.info("signed webhook from %s refused: %s", ",".join(sources), exc)
            return _answer("malformed", 400, f"the body is not a webhook of docs/payment-gateway.md: {exc}")
        keys = self.secrets.payments(message.session, sources)
        if keys:
            self.wake(keys)
        return _answer("accepted", 204)
