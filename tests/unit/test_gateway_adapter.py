"""The gateway adapter and the webhook endpoint against real HTTP on 127.0.0.1: every reply bounded."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from kubemart.adapters.gateway import Gateway, GatewayError
from kubemart.domain import webhooks
from kubemart.domain.gateway_protocol import SessionRequest
from kubemart.services.webhook_secrets import WebhookSecrets
from kubemart.services.webhook_server import WebhookServer
from support.operator_process import free_port

TOKEN = "tok-s3cr3t"
REQUEST = SessionRequest(
    source="main",
    app="notes",
    developer=None,
    amount="4.99",
    currency="USD",
    buyer="team-a",
    reference="team-a/buy/uid",
)

Reply = Callable[[http.server.BaseHTTPRequestHandler], None]


def answer(code: int, body: bytes, *, length: int | None = None, trickle: float = 0.0) -> Reply:
    def send(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        for i in range(0, len(body), 1 if trickle else len(body) or 1):
            handler.wfile.write(body[i : i + (1 if trickle else len(body))])
            handler.wfile.flush()
            time.sleep(trickle)

    return send


@pytest.fixture(scope="module")
def http_server() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"reply": answer(200, b"{}"), "seen": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state["seen"].append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                state["reply"](self)

        do_GET = do_POST = _any

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{srv.server_address[1]}"
    yield state
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server(http_server: dict[str, Any]) -> dict[str, Any]:
    http_server["seen"] = []
    return http_server


async def _create(url: str, limit: float = 5.0) -> Any:
    async with Gateway(url, TOKEN, timeout=limit) as gw:
        return await gw.create_session(REQUEST, idempotency_key="kubemart-payment-uid")


def test_a_session_create_sends_the_idempotency_key_and_no_webhook_url_unless_set(
    server: dict[str, Any],
) -> None:
    created = {"session": "cs_1", "state": "open", "checkoutURL": "https://pay.example/c/cs_1"}
    server["reply"] = answer(201, json.dumps(created).encode())
    view = asyncio.run(_create(server["url"]))
    assert view.session == "cs_1"
    method, path, headers, body = server["seen"][0]
    assert (method, path) == ("POST", "/sessions")
    assert headers["Idempotency-Key"] == "kubemart-payment-uid"
    sent = json.loads(body)
    assert sent["developer"] is None, "developer is sent, as null"
    assert "webhookURL" not in sent


@pytest.mark.parametrize(
    ("reply", "reason", "retryable", "says"),
    [
        pytest.param(
            answer(422, b'{"error":"unknown app"}'), "CheckoutRefused", False, "(422): unknown app", id="4xx"
        ),
        pytest.param(
            answer(402, b"payment required\n\x00" + TOKEN.encode()),
            "CheckoutRefused",
            False,
            "***",
            id="4xx, token echoed",
        ),
        pytest.param(answer(401, b""), "GatewayAuthFailed", True, "refused the operator's token", id="401"),
        pytest.param(answer(429, b""), "GatewayUnavailable", True, "answered 429", id="429"),
        pytest.param(answer(503, b""), "GatewayUnavailable", True, "answered 503", id="503"),
        pytest.param(
            answer(201, b"<html>ok</html>"),
            "GatewayProtocolError",
            True,
            "not a JSON object",
            id="201 not JSON",
        ),
        pytest.param(
            answer(201, b'{"session": "cs_1", '),
            "GatewayProtocolError",
            True,
            "not JSON (",
            id="201 cut short",
        ),
        pytest.param(
            answer(201, b'{"state":"open"}'),
            "GatewayProtocolError",
            True,
            "session: Field required",
            id="201 without session",
        ),
        pytest.param(
            answer(201, b'{"session":1,"state":"open","checkoutURL":"http://x/1"}'),
            "GatewayProtocolError",
            True,
            "session: Input should be a valid string",
            id="201 wrong types",
        ),
        pytest.param(
            answer(201, b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
            "GatewayProtocolError",
            True,
            "deeper than",
            id="201 10,000 deep",
        ),
        pytest.param(
            answer(201, b"x" * 200_000),
            "GatewayProtocolError",
            True,
            "more than 65536 bytes",
            id="a huge body",
        ),
        pytest.param(
            answer(201, b"x" * 200_000, length=10),
            "GatewayProtocolError",
            True,
            "",
            id="a lying Content-Length",
        ),
        pytest.param(answer(302, b""), "GatewayProtocolError", True, "302", id="a redirect is not followed"),
    ],
)
def test_session_create_answers(
    server: dict[str, Any], reply: Reply, reason: str, retryable: bool, says: str
) -> None:
    server["reply"] = reply
    with pytest.raises(GatewayError) as caught:
        asyncio.run(_create(server["url"]))
    err = caught.value
    assert (err.reason, err.retryable) == (reason, retryable), err.message
    assert says in err.message
    assert TOKEN not in err.message
    assert "\n" not in err.message


def test_a_gateway_trickling_its_reply_is_cut_off_at_the_timeout(server: dict[str, Any]) -> None:
    body = json.dumps({"session": "cs_1", "state": "open", "checkoutURL": "http://x/c"}).encode()
    server["reply"] = answer(201, body, trickle=0.05)  # ~3 s in all, each byte well within a read timeout
    started = time.monotonic()
    with pytest.raises(GatewayError, match="did not answer in time"):
        asyncio.run(_create(server["url"], limit=1.0))
    assert time.monotonic() - started < 2.5


def test_session_ids_are_sent_escaped_and_another_session_is_refused(server: dict[str, Any]) -> None:
    server["reply"] = answer(200, b'{"session":"cs_other","state":"open"}')

    async def look() -> None:
        async with Gateway(server["url"], TOKEN) as gw:
            await gw.session("cs_1")

    with pytest.raises(GatewayError, match="another session"):
        asyncio.run(look())


# --- the webhook endpoint ------------------------------------------------------------------------


@pytest.fixture
def endpoint() -> Iterator[tuple[str, WebhookSecrets, list[list[Any]]]]:
    secrets, woken = WebhookSecrets(), []
    secrets.set_source("acme", b"whsec_acme")
    secrets.set_source("other", b"whsec_other")
    secrets.follow(("team-a", "buy"), "acme", "cs_1")
    secrets.follow(("team-b", "buy"), "other", "cs_1")
    port = free_port()
    loop = asyncio.new_event_loop()
    server = WebhookServer(secrets, woken.append)
    loop.run_until_complete(server.start(port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/webhooks/payment", secrets, woken
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def signed(secret: bytes, body: bytes) -> dict[str, str]:
    return {webhooks.HEADER: webhooks.signature_header(secret, body, int(time.time()))}


BODY = b'{"session":"cs_1","state":"paid"}'
DEEP = b"[" * 30_000 + b"]" * 30_000


@pytest.mark.parametrize(
    ("body", "sign_with", "status"),
    [
        pytest.param(BODY, None, 401, id="unsigned"),
        pytest.param(BODY, b"wrong", 401, id="wrong secret"),
        pytest.param(b"not json", None, 401, id="unsigned garbage: 401, not 400"),
        pytest.param(DEEP, None, 413, id="30,000 deep: too large, before anything"),
        pytest.param(DEEP[:16_000], None, 401, id="unsigned 8,000 deep"),
        pytest.param(DEEP[:16_000], b"whsec_acme", 400, id="signed, too deep"),
        pytest.param(b"not json", b"whsec_acme", 400, id="signed garbage"),
        pytest.param(b'{"state":"paid"}', b"whsec_acme", 400, id="signed, no session"),
        pytest.param(b"x" * 20_000, None, 413, id="too large"),
    ],
)
def test_webhooks_are_authenticated_before_they_are_parsed(
    endpoint: tuple[str, WebhookSecrets, list[list[Any]]], body: bytes, sign_with: bytes | None, status: int
) -> None:
    url, _, woken = endpoint
    # Signed now, not when the parameters were collected: the signature's time window is 300 s.
    headers = signed(sign_with, body) if sign_with is not None else {}
    assert httpx.post(url, content=body, headers=headers).status_code == status
    assert woken == []


def test_a_signed_webhook_wakes_only_the_payments_of_the_source_that_signed(
    endpoint: tuple[str, WebhookSecrets, list[list[Any]]],
) -> None:
    url, secrets, woken = endpoint
    assert httpx.post(url, content=BODY, headers=signed(b"whsec_acme", BODY)).status_code == 204
    assert woken == [[("team-a", "buy")]]
    other = b'{"session":"cs_unknown"}'
    assert httpx.post(url, content=other, headers=signed(b"whsec_acme", other)).status_code == 204
    assert len(woken) == 1, "a session nobody follows wakes nobody"
    secrets.forget_source("acme")
    assert httpx.post(url, content=BODY, headers=signed(b"whsec_acme", BODY)).status_code == 401
