"""A CloudEvents receiver on 127.0.0.1: what a NotificationSink posts to in the tests.

It parses each request with the CloudEvents SDK (structured mode), checks the HMAC signature when
it has a key, and keeps what arrived in order. A test can make it slow (`delay`), or take it down
and bring it back on the same port (`stop`, `start`): while down, connections are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_structured_event


@dataclass(frozen=True)
class Received:
    attributes: dict[str, Any]
    data: dict[str, Any]
    headers: dict[str, str]
    signed: bool
    """The X-Kubemart-Signature header matched the body under the receiver's key."""
    at: float


class Receiver:
    def __init__(self, hmac_key: bytes | None = None, token: str | None = None) -> None:
        self.hmac_key = hmac_key
        self.token = token
        self.delay = 0.0
        """Seconds each answer is held back: a slow receiver."""
        self.answer = 202
        """The status every accepted request gets (a 3xx comes with a Location to the receiver itself)."""
        self.received: list[Received] = []
        self.refused = 0
        self.lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self.port = 0
        self.start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    time.sleep(receiver.delay)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.token is not None and headers.get("authorization") != f"Bearer {receiver.token}":
                    receiver.refused += 1
                    return self._answer(401)
                signed = False
                if receiver.hmac_key is not None:
                    want = "sha256=" + hmac.new(receiver.hmac_key, body, hashlib.sha256).hexdigest()
                    signed = hmac.compare_digest(want, headers.get("x-kubemart-signature", ""))
                event = from_structured_event(HTTPMessage(headers=headers, body=body))
                data = event.get_data()
                assert isinstance(data, dict), data
                attributes = dict(event.get_attributes())
                with receiver.lock:
                    receiver.received.append(Received(attributes, data, headers, signed, time.monotonic()))
                return self._answer(receiver.answer)

            def _answer(self, code: int) -> None:
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", receiver.url)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def start(self) -> None:
        """Listen (again, on the same port once it had one)."""
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: the port refuses connections until `start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, **match: str) -> list[Received]:
        """What arrived, in order, whose data has every `match` item (e.g. reason="Installed")."""
        with self.lock:
            got = list(self.received)
        return [r for r in got if all(r.data.get(k) == v for k, v in match.items())]

    def ids(self) -> list[str]:
        with self.lock:
            return [str(r.attributes["id"]) for r in self.received]

    def dump(self) -> str:
        return json.dumps([r.data for r in self.events()], indent=1)[-4000:]

    def close(self) -> None:
        self.stop()
