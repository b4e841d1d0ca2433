"""Payment gateways over HTTP (docs/payment-gateway.md): the one place their errors are translated.

Every reply is bounded before it is believed: at most `max_bytes` read (the Content-Length is not
trusted), the whole exchange within `timeout` seconds (a gateway trickling bytes cannot hold a
reconcile), then parsed by `domain.gateway_protocol` (JSON depth, every field's type). Text a
gateway sends back reaches a condition only cut short, on one line, with the token blanked out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from kubemart import __version__
from kubemart.domain import gateway_protocol as protocol
from kubemart.domain.gateway_protocol import (
    ErrorReply,
    InvalidMessage,
    Message,
    Receipt,
    Session,
    SessionCreated,
    SessionRequest,
)

M = TypeVar("M", bound=Message)
INLINE_PARSE_BYTES = 8 * 1024
"""Replies larger than this are parsed in a worker thread, off the event loop."""


class GatewayError(Exception):
    """`retryable` errors keep a Payment where it is and back off; the others end its checkout."""

    def __init__(self, reason: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


class Gateway:
    def __init__(
        self, url: str, token: str, *, timeout: float = 10.0, max_bytes: int = protocol.MAX_REPLY_BYTES
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._token = token
        # The token goes in a header of each request; it never appears in a message or a log line.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"kubemart/{__version__}"},
            follow_redirects=False,
        )

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    # --- the exchange, bounded ---------------------------------------------------------------

    async def exchange(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Reply:
        """One request; its reply's status and at most `max_bytes` of body, within `timeout` seconds."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream(method, f"{self.url}{path}", json=body, headers=sent) as r:
                    declared = r.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.max_bytes:
                        raise self._too_large(method, path)
                    data = bytearray()
                    async for chunk in r.aiter_bytes():
                        data += chunk
                        if len(data) > self.max_bytes:
                            raise self._too_large(method, path)
                    return Reply(r.status_code, bytes(data))
        except TimeoutError as exc:
            raise GatewayError(
                "GatewayUnavailable",
                f"The payment gateway at {self.url} did not answer in time.",
                retryable=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise GatewayError(
                "GatewayUnavailable",
                f"The payment gateway at {self.url} did not answer in time.",
                retryable=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise GatewayError(
                "GatewayUnavailable",
                f"The payment gateway at {self.url} cannot be reached ({type(exc).__name__}).",
                retryable=True,
            ) from exc

    def _too_large(self, method: str, path: str) -> GatewayError:
        return GatewayError(
            "GatewayProtocolError",
            f"The payment gateway at {self.url} answered {method} {path} with more than {self.max_bytes} bytes.",
            retryable=True,
        )

    def said(self, reply: Reply) -> str:
        """What the gateway's error body says, fit for a condition (cut short, one line, no token)."""
        try:
            text = protocol.parse(ErrorReply, reply.body).error
        except InvalidMessage:
            text = reply.body[:400].decode(errors="replace")
        return protocol.clip(text.replace(self._token, "***")) if text.strip() else "no reason given"

    def _check_common(self, method: str, path: str, reply: Reply) -> None:
        if reply.status in (401, 403):
            raise GatewayError(
                "GatewayAuthFailed",
                f"The payment gateway at {self.url} refused the operator's token ({reply.status}); "
                "check the token in the source's payment secretRef.",
                retryable=True,
            )
        if reply.status >= 500 or reply.status in (408, 429):
            raise GatewayError(
                "GatewayUnavailable",
                f"The payment gateway at {self.url} answered {reply.status} to {method} {path}.",
                retryable=True,
            )

    async def _read(self, model: type[M], method: str, path: str, reply: Reply) -> M:
        try:
            if len(reply.body) <= INLINE_PARSE_BYTES:
                return protocol.parse(model, reply.body, max_bytes=self.max_bytes)
            # A large reply that fails validation is turned into Python objects whole (tens of ms).
            return await asyncio.to_thread(protocol.parse, model, reply.body, max_bytes=self.max_bytes)
        except InvalidMessage as exc:
            raise GatewayError(
                "GatewayProtocolError",
                f"The payment gateway at {self.url} answered {method} {path} ({reply.status}) with a body "
                f"that is not a {model.__name__} of docs/payment-gateway.md: {protocol.clip(str(exc), 300)}.",
                retryable=True,
            ) from None

    def _unexpected(self, method: str, path: str, reply: Reply) -> GatewayError:
        return GatewayError(
            "GatewayProtocolError",
            f"The payment gateway at {self.url} answered {method} {path} with {reply.status}, which "
            f"docs/payment-gateway.md does not allow there: {self.said(reply)}.",
            retryable=True,
        )

    # --- the protocol ------------------------------------------------------------------------

    async def create_session(self, request: SessionRequest, *, idempotency_key: str) -> SessionCreated:
        """The session for `idempotency_key`: a new one, or the one this key opened before."""
        body = request.model_dump(mode="json", by_alias=True)
        if body.get("webhookURL") is None:
            body.pop("webhookURL", None)
        reply = await self.exchange(
            "POST", "/sessions", body, headers={protocol.IDEMPOTENCY_HEADER: idempotency_key}
        )
        self._check_common("POST", "/sessions", reply)
        if 400 <= reply.status < 500:
            raise GatewayError(
                "CheckoutRefused",
                f"The payment gateway at {self.url} refused to open a checkout ({reply.status}): "
                f"{self.said(reply)}.",
                retryable=False,
            )
        if reply.status not in (200, 201):
            raise self._unexpected("POST", "/sessions", reply)
        return await self._read(SessionCreated, "POST", "/sessions", reply)

    async def session(self, session: str) -> Session:
        path = f"/sessions/{quote(session, safe='')}"
        reply = await self.exchange("GET", path)
        self._check_common("GET", path, reply)
        if reply.status == 404:
            raise GatewayError(
                "SessionNotFound",
                f"The payment gateway at {self.url} does not know session {protocol.clip(session, 80)}.",
                retryable=True,
            )
        if reply.status != 200:
            raise self._unexpected("GET", path, reply)
        view = await self._read(Session, "GET", path, reply)
        if view.session != session:
            raise GatewayError(
                "GatewayProtocolError",
                f"The payment gateway at {self.url} answered {path} with another session.",
                retryable=True,
            )
        return view

    async def cancel(self, session: str) -> Session:
        """Ask to cancel an open session; the session as it is afterwards (it may have been paid first)."""
        path = f"/sessions/{quote(session, safe='')}/cancel"
        reply = await self.exchange("POST", path)
        self._check_common("POST", path, reply)
        if reply.status != 200:
            raise self._unexpected("POST", path, reply)
        return await self._read(Session, "POST", path, reply)

    async def receipt(self, session: str) -> Receipt:
        path = f"/sessions/{quote(session, safe='')}/receipt"
        reply = await self.exchange("GET", path)
        self._check_common("GET", path, reply)
        if reply.status in (404, 410):
            raise GatewayError(
                "ReceiptUnavailable",
                f"The payment gateway at {self.url} has no receipt for session {protocol.clip(session, 80)} "
                f"({reply.status}).",
                retryable=True,
            )
        if reply.status != 200:
            raise self._unexpected("GET", path, reply)
        return await self._read(Receipt, "GET", path, reply)
