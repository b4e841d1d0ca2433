"""Payment gateways over HTTP (docs/payment-gateway.md): the one place their errors are translated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from kubemart import __version__


class GatewayError(Exception):
    """`retryable` errors keep a Payment where it is and back off; the others end its checkout."""

    def __init__(self, reason: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class SessionView:
    session: str
    state: str
    checkout_url: str | None
    expires_at: str | None


class Gateway:
    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
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

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self._client.request(method, f"{self.url}{path}", json=body)
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
        if response.status_code in (401, 403):
            raise GatewayError(
                "GatewayAuthFailed",
                f"The payment gateway at {self.url} refused the operator's token; check the source's payment secretRef.",
                retryable=True,
            )
        if response.status_code >= 500 or response.status_code == 429:
            raise GatewayError(
                "GatewayUnavailable",
                f"The payment gateway at {self.url} answered {response.status_code}.",
                retryable=True,
            )
        return response

    @staticmethod
    def _view(data: dict[str, Any]) -> SessionView:
        return SessionView(
            session=str(data["session"]),
            state=str(data.get("state", "open")),
            checkout_url=data.get("checkoutURL"),
            expires_at=data.get("expiresAt"),
        )

    async def create_session(self, request: dict[str, Any]) -> SessionView:
        response = await self._call("POST", "/sessions", request)
        if response.status_code not in (200, 201):
            raise GatewayError(
                "CheckoutRefused",
                f"The payment gateway refused the checkout ({response.status_code}): {response.text[:200]}",
                retryable=False,
            )
        return self._view(response.json())

    async def session(self, session: str) -> SessionView:
        response = await self._call("GET", f"/sessions/{session}")
        if response.status_code != 200:
            raise GatewayError(
                "SessionNotFound", f"The payment gateway does not know session {session}.", retryable=True
            )
        return self._view(response.json())

    async def receipt(self, session: str) -> dict[str, Any]:
        response = await self._call("GET", f"/sessions/{session}/receipt")
        if response.status_code != 200:
            raise GatewayError(
                "ReceiptUnavailable",
                f"The payment gateway has no receipt for session {session} yet.",
                retryable=True,
            )
        data = response.json()
        if not isinstance(data, dict):
            raise GatewayError(
                "ReceiptUnavailable", "The payment gateway's receipt is not a JSON object.", retryable=True
            )
        return data
