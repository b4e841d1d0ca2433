"""A threading HTTP server for tests, optionally over TLS, that no client can hold up.

The standard library's recipe (wrapping the listening socket) does each TLS handshake inside the
accept loop: one client that connects and never says hello blocks every later client and makes
`shutdown()` wait forever. Here the handshake runs in the request's own thread, with a deadline, and
`close()` gives up on the loop after a few seconds.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import sys
import threading
from typing import Any, Self

HANDSHAKE_SECONDS = 30.0
CLOSE_SECONDS = 10.0


class TestHTTPServer(http.server.ThreadingHTTPServer):
    __test__ = False  # not a pytest test class
    daemon_threads = True

    def __init__(
        self, handler: type[http.server.BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.tls = tls
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> Self:
        self._thread.start()
        return self

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.tls is None:
            return sock, addr
        sock.settimeout(HANDSHAKE_SECONDS)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError | TimeoutError | socket.timeout):
            return  # a client that gave up, stalled or refused our certificate
        super().handle_error(request, client_address)

    def close(self) -> None:
        stopper = threading.Thread(target=self.shutdown, daemon=True)
        stopper.start()
        stopper.join(CLOSE_SECONDS)
        self.server_close()
