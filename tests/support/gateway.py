"""A payment gateway of the tests' own on 127.0.0.1, speaking docs/payment-gateway.md."""

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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kubemart.domain import receipts


@dataclass
class Session:
    id: str
    request: dict[str, Any]
    state: str = "open"
    expires_at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(minutes=30))


class Gateway:
    def __init__(self, token: str = "gw-token") -> None:
        self.token = token
        self.key = Ed25519PrivateKey.generate()
        self.public_key = base64.b64encode(
            self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        ).decode()
        self.sessions: dict[str, Session] = {}
        self.by_reference: dict[str, str] = {}
        self.down = False
        self.delay = 0.0
        """Seconds every answer is held back: a slow gateway."""
        self.requests: list[tuple[str, str]] = []
        self.receipt_override: dict[str, Any] | None = None
        """Claims to sign instead of the session's own (a gateway that lies, or a bug)."""
        self.lock = threading.Lock()
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                gateway.requests.append((self.command, self.path))
                if gateway.delay:
                    time.sleep(gateway.delay)
                if gateway.down:
                    self._send(503, {"error": "down"})
                    return False
                if self.headers.get("Authorization") != f"Bearer {gateway.token}":
                    self._send(401, {"error": "unauthorized"})
                    return False
                return True

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                with gateway.lock:
                    sid = gateway.by_reference.get(body.get("reference", ""))
                    if sid is None:
                        sid = f"cs_{uuid.uuid4().hex[:10]}"
                        gateway.sessions[sid] = Session(sid, body)
                        gateway.by_reference[body.get("reference", sid)] = sid
                    s = gateway.sessions[sid]
                self._send(201, gateway.view(s))

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                parts = self.path.strip("/").split("/")
                s = gateway.sessions.get(parts[1]) if len(parts) >= 2 and parts[0] == "sessions" else None
                if s is None:
                    self._send(404, {"error": "no such session"})
                elif len(parts) == 3 and parts[2] == "receipt":
                    if s.state not in ("paid", "refunded"):
                        self._send(404, {"error": "not paid"})
                    else:
                        self._send(200, gateway.receipt(s))
                else:
                    self._send(200, gateway.view(s))

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def view(self, s: Session) -> dict[str, Any]:
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
        return receipts.sign(claims, self.key)

    def set_state(self, session: str, state: str) -> None:
        with self.lock:
            self.sessions[session].state = state

    def only_session(self) -> Session:
        assert len(self.sessions) == 1, self.sessions
        return next(iter(self.sessions.values()))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
