"""A payment gateway of the tests' own on 127.0.0.1, speaking docs/payment-gateway.md.

Knobs make it misbehave the ways real gateways do: down, slow, refusing or garbling a session
create, lying in a receipt; `flaws` break it on purpose for the conformance check's tests.
`POST /test/sessions/{id}/pay` and `/refund` are its sandbox hooks (the doc's optional test hooks).
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kubemart.domain import gateway_protocol as protocol
from kubemart.domain import receipts, webhooks

FLAWS = frozenset(
    {
        "not_idempotent",  # a second create with the same Idempotency-Key opens a second session
        "wrong_types",  # the session view's fields have the wrong JSON types
        "foreign_signature",  # receipts are signed by a key the source does not list
        "no_auth",  # any token (or none) is accepted
        "receipt_before_paid",  # an open session already has a receipt
        "cancel_ignored",  # cancel answers 200 and leaves the session open
    }
)


@dataclass
class Session:
    id: str
    request: dict[str, Any]
    state: str = "open"
    expires_at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(minutes=30))


def encode_key(key: Ed25519PrivateKey, key_format: str) -> str:
    public = key.public_key()
    if key_format == "pem":
        return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    if key_format == "spki":
        return base64.b64encode(public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if key_format == "raw-url":
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return base64.b64encode(raw).decode()


class Gateway:
    def __init__(
        self,
        token: str = "gw-token",
        *,
        key_format: str = "raw",
        kid: str = "",
        flaws: frozenset[str] = frozenset(),
    ) -> None:
        assert flaws <= FLAWS, flaws - FLAWS
        self.token = token
        self.key = Ed25519PrivateKey.generate()
        self.kid = kid
        self.key_format = key_format
        self.flaws = flaws
        self.sessions: dict[str, Session] = {}
        self.by_key: dict[str, str] = {}
        self.down = False
        self.delay = 0.0
        """Seconds every answer is held back: a slow gateway."""
        self.requests: list[tuple[str, str]] = []
        self.create_requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        """(headers, body) of every POST /sessions."""
        self.create_reply: tuple[int, bytes] | None = None
        """An answer to every session create instead of the real one (after a 2xx one, the session exists)."""
        self.receipt_override: dict[str, Any] | None = None
        """Claims to sign instead of the session's own (a gateway that lies, or a bug)."""
        self.lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def public_key(self) -> str:
        return encode_key(self.key, self.key_format)

    # --- the HTTP side -------------------------------------------------------------------------

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any = None, raw: bytes | None = None) -> None:
                data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                with gateway.lock:
                    gateway.requests.append((self.command, self.path))
                if gateway.delay:
                    time.sleep(gateway.delay)
                if gateway.down:
                    self._send(503, {"error": "down"})
                    return False
                if "no_auth" in gateway.flaws:
                    return True
                if self.headers.get("Authorization") != f"Bearer {gateway.token}":
                    self._send(401, {"error": "unauthorized"})
                    return False
                return True

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                parts = self.path.strip("/").split("/")
                if parts == ["sessions"]:
                    try:
                        protocol.parse(protocol.SessionRequest, raw)
                    except protocol.InvalidMessage as exc:
                        self._send(400, {"error": f"not a session request: {exc}"})
                        return
                    self._create(json.loads(raw))
                elif len(parts) == 3 and parts[0] == "sessions" and parts[2] == "cancel":
                    self._cancel(parts[1])
                elif len(parts) == 4 and parts[:2] == ["test", "sessions"] and parts[3] in ("pay", "refund"):
                    s = gateway.sessions.get(parts[2])
                    if s is None:
                        self._send(404, {"error": "no such session"})
                        return
                    gateway.set_state(s.id, "paid" if parts[3] == "pay" else "refunded")
                    self._send(200, gateway.view(s))
                else:
                    self._send(404, {"error": "no such endpoint"})

            def _create(self, body: dict[str, Any]) -> None:
                key = self.headers.get("Idempotency-Key") or ""
                with gateway.lock:
                    gateway.create_requests.append((dict(self.headers), body))
                    refused = gateway.create_reply is not None and gateway.create_reply[0] >= 400
                    sid = None if "not_idempotent" in gateway.flaws else gateway.by_key.get(key)
                    created = sid is None
                    if created and not refused:
                        sid = f"cs_{uuid.uuid4().hex[:10]}"
                        gateway.sessions[sid] = Session(sid, body)
                        if key:
                            gateway.by_key[key] = sid
                if gateway.create_reply is not None:
                    self._send(gateway.create_reply[0], raw=gateway.create_reply[1])
                    return
                assert sid is not None
                self._send(201 if created else 200, gateway.view(gateway.sessions[sid]))

            def _cancel(self, sid: str) -> None:
                s = gateway.sessions.get(sid)
                if s is None:
                    self._send(404, {"error": "no such session"})
                    return
                if s.state == "open" and "cancel_ignored" not in gateway.flaws:
                    gateway.set_state(sid, "canceled")
                self._send(200, gateway.view(s))

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                parts = self.path.strip("/").split("/")
                s = gateway.sessions.get(parts[1]) if len(parts) >= 2 and parts[0] == "sessions" else None
                if s is None:
                    self._send(404, {"error": "no such session"})
                elif len(parts) == 3 and parts[2] == "receipt":
                    if s.state == "refunded":
                        self._send(410, {"error": "refunded"})
                    elif s.state != "paid" and "receipt_before_paid" not in gateway.flaws:
                        self._send(404, {"error": "not paid"})
                    else:
                        self._send(200, gateway.receipt(s))
                else:
                    self._send(200, gateway.view(s))

        return Handler

    # --- what it answers -----------------------------------------------------------------------

    def view(self, s: Session) -> dict[str, Any]:
        if "wrong_types" in self.flaws:
            return {"session": 12345, "state": ["open"], "checkoutURL": 7}
        return {
            "session": s.id,
            "state": s.state,
            "checkoutURL": f"{self.url}/checkout/{s.id}",
            "expiresAt": s.expires_at.isoformat().replace("+00:00", "Z"),
        }

    def receipt(self, s: Session) -> dict[str, str]:
        r = s.request
        claims = {
            "source": r["source"],
            "app": r["app"],
            "developer": r.get("developer"),
            "buyer": r["buyer"],
            "amount": r["amount"],
            "currency": r["currency"],
            "session": s.id,
            "paidAt": datetime.now(UTC).isoformat(),
        }
        if self.receipt_override:
            claims.update(self.receipt_override)
        key = Ed25519PrivateKey.generate() if "foreign_signature" in self.flaws else self.key
        return receipts.sign(claims, key, kid=self.kid)

    # --- driving it from a test ------------------------------------------------------------------

    def set_state(self, session: str, state: str) -> None:
        with self.lock:
            self.sessions[session].state = state

    def only_session(self) -> Session:
        assert len(self.sessions) == 1, self.sessions
        return next(iter(self.sessions.values()))

    def rotate_key(self, kid: str) -> Ed25519PrivateKey:
        """Sign from now on with a new key named `kid`; the old key is returned."""
        old, self.key, self.kid = self.key, Ed25519PrivateKey.generate(), kid
        return old

    def notify(self, session: str, secret: bytes) -> int:
        """POST a signed webhook to the webhookURL the session was created with; the status code."""
        s = self.sessions[session]
        body = json.dumps({"session": s.id, "state": s.state}).encode()
        header = webhooks.signature_header(secret, body, int(time.time()))
        return httpx.post(
            s.request["webhookURL"], content=body, headers={webhooks.HEADER: header}
        ).status_code

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
