"""A token server for the distribution registry's Bearer flow, on 127.0.0.1 over TLS.

What auth.docker.io and ghcr.io/token do, in small: `GET /token?service=..&scope=..` answers a JWT
(ES256, the signing certificate in the `x5c` header, issued by the test CA the registry trusts as
its `rootcertbundle`) granting the scopes asked for: anyone may pull repositories under `public/`;
everything else needs the username and password as Basic auth. Requests are logged for the tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from .tls_server import TestHTTPServer

SERVICE = "kubemart-test-registry"
ISSUER = "kubemart-test-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(
        self,
        root: Path,
        ca_key: ec.EllipticCurvePrivateKey,
        ca: x509.Certificate,
        *,
        users: dict[str, str],
        cert_pem: bytes,
        key_pem: bytes,
    ) -> None:
        self.users = users
        self.log: list[tuple[str, bool]] = []
        """(scope asked, whether Basic credentials came)."""
        self._lock = threading.Lock()
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        signer = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)]))
            .issuer_name(ca.subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(ca_key, hashes.SHA256())
        )
        self._x5c = base64.b64encode(signer.public_bytes(serialization.Encoding.DER)).decode()
        (root / "token-cert.pem").write_bytes(cert_pem)
        (root / "token-key.pem").write_bytes(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(root / "token-cert.pem", root / "token-key.pem")
        self._server = TestHTTPServer(self._handler(), tls=context).start()
        self.url = f"https://127.0.0.1:{self._server.port}/token"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                scopes = query.get("scope", [])
                user = outer._user(self.headers.get("Authorization"))
                with outer._lock:
                    outer.log.append((" ".join(scopes), self.headers.get("Authorization") is not None))
                if user is False:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(
                    {"token": outer._token(user or "", scopes), "expires_in": 300, "issued_at": "now"}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

        return Handler

    def _user(self, header: str | None) -> str | bool | None:
        """The user, None for anonymous, False for wrong credentials."""
        if not header:
            return None
        if not header.startswith("Basic "):
            return False
        name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return name if self.users.get(name) == password else False

    def _token(self, user: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = actions.split(",") if user else [a for a in actions.split(",") if a == "pull"]
            if not user and not name.startswith("public/"):
                allowed = []
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def requests(self) -> list[tuple[str, bool]]:
        with self._lock:
            return list(self.log)

    def close(self) -> None:
        self._server.close()
