"""Notification receivers over HTTP: the one place their errors are translated.

A sink's URL is tenant input, so each delivery resolves the host itself, refuses addresses
`domain.notify.address_refused` names, and connects to the address it checked (the Host header and
TLS SNI keep the name): a DNS answer that changes between check and connect cannot redirect us.
No redirect is followed, at most `max_bytes` of an answer is read, and the whole exchange is bounded
by `timeout`.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit, urlunsplit

import httpx

from kubemart import __version__
from kubemart.domain.notify import address_refused

MAX_POOLS = 256
"""Host names with a connection pool kept; the least recently used beyond it is closed."""


class ReceiverError(Exception):
    """`retryable`: try the same Event again later; otherwise the receiver refused it for good."""

    def __init__(self, reason: str, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable
        self.status = status


class Receivers:
    def __init__(self, *, timeout: float, allow_private: bool, max_bytes: int = 4096) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.max_bytes = max_bytes
        self._closing: set[asyncio.Task[None]] = set()
        self._clients: dict[str, httpx.AsyncClient] = {}
        """One connection pool per host name: pools are keyed by address, and a TLS connection made
        for one name (its SNI, its certificate) must never carry a request for another."""

    def _client(self, host: str) -> httpx.AsyncClient:
        client = self._clients.pop(host, None)
        if client is None:
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
                follow_redirects=False,
                headers={"User-Agent": f"kubemart/{__version__}"},
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
                trust_env=False,  # a proxy from the environment would bypass the address check
            )
        self._clients[host] = client  # the most recently used last
        while len(self._clients) > MAX_POOLS:
            oldest = self._clients.pop(next(iter(self._clients)))
            task = asyncio.get_running_loop().create_task(oldest.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return client

    async def close(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients.values()), *self._closing)
        self._clients.clear()

    async def address(self, url: str) -> str:
        """The first address `url`'s host resolves to, if none is refused; ReceiverError otherwise."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ReceiverError(
                "HostNotFound", f"{host} does not resolve ({type(exc).__name__})", retryable=True
            ) from None
        addresses = [str(info[4][0]) for info in infos]
        refused = [a for a in addresses if address_refused(a, allow_private=self.allow_private)]
        if refused or not addresses:
            raise ReceiverError(
                "AddressNotAllowed",
                f"{host} resolves to {', '.join(refused) or 'nothing'}: loopback, link-local, private and "
                "cluster-internal addresses are refused (the operator's KUBEMART_NOTIFY_ALLOW_PRIVATE "
                "allows all but link-local)",
                retryable=False,
            )
        return addresses[0]

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """POST once; the status code of a 2xx answer, ReceiverError for anything else."""
        address = await self.address(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        client = self._client(host)
        netloc = f"[{address}]" if ":" in address else address
        if parts.port:
            netloc += f":{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        sent = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
        try:
            async with asyncio.timeout(self.timeout):
                request = client.build_request(
                    "POST", pinned, content=body, headers=sent, extensions={"sni_hostname": host}
                )
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= self.max_bytes:
                            break  # the answer's body tells us nothing we need
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise ReceiverError(
                "Timeout", f"{host} did not answer within {self.timeout:g}s", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise ReceiverError(
                "Unreachable", f"{host} cannot be reached ({type(exc).__name__})", retryable=True
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return status
        retryable = status >= 500 or status in (401, 403, 408, 429)
        what = "a redirect, which is not followed" if 300 <= status < 400 else f"HTTP {status}"
        return_reason = "Redirected" if 300 <= status < 400 else f"HTTP{status}"
        raise ReceiverError(return_reason, f"{host} answered {what}", retryable=retryable, status=status)
