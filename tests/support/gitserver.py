"""A real git server on 127.0.0.1: git's own `git http-backend` (smart HTTP, protocol v2) behind a small
Python HTTP server acting as its CGI host, with basic auth, optional TLS and counted requests.

Repositories are bare, under `root`; `GitRepo` writes files into one and commits with the git CLI.
"""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tls_server import TestHTTPServer

BACKEND = "/usr/lib/git-core/git-http-backend"
GIT = shutil.which("git") or "/usr/bin/git"
_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull, **_ENV}
    return subprocess.run(
        [GIT, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True, timeout=120
    ).stdout.strip()


@dataclass
class Requests:
    lines: list[tuple[str, str]] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)
    """Transfer-Encoding and Content-Encoding of each request body, as sent."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, encoding: str = "") -> None:
        with self.lock:
            self.lines.append((method, path))
            self.encodings.append(encoding)

    def count(self) -> int:
        with self.lock:
            return len(self.lines)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        srv = self.server
        encoding = f"{self.headers.get('Transfer-Encoding', '')}/{self.headers.get('Content-Encoding', '')}"
        srv.requests.add(self.command, self.path, encoding)
        body = self._body()
        if srv.stall:
            srv.released.wait(srv.stall)
        if srv.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(srv.credentials).encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(srv.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "HOME": os.devnull,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": srv.credentials[0] if srv.credentials else "",
            "REMOTE_ADDR": "127.0.0.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run([BACKEND], input=body, env=env, capture_output=True, timeout=120, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt: str, *args: Any) -> None:
        pass


class _Server(TestHTTPServer):
    def __init__(self, root: Path, tls: ssl.SSLContext | None) -> None:
        super().__init__(_Handler, tls=tls)
        self.root = root
        self.requests = Requests()
        self.credentials: tuple[str, str] | None = None
        self.stall = 0.0
        self.released = threading.Event()


class GitServer:
    """`url(name)` is the URL of the bare repository `root/name.git`."""

    def __init__(self, root: Path, *, tls: tuple[Path, Path] | None = None) -> None:
        self.root = root
        ctx: ssl.SSLContext | None = None
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.scheme = "https"
        self._server = _Server(root, ctx).start()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def requests(self) -> Requests:
        return self._server.requests

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}.git"

    def require_basic_auth(self, username: str, password: str) -> None:
        self._server.credentials = (username, password)

    def stall(self, seconds: float) -> None:
        """Hold every request that long before answering (0: answer at once)."""
        self._server.stall = seconds

    def repo(self, name: str) -> GitRepo:
        return GitRepo(self.root / f"{name}.git", self.root / f"{name}.work")

    def close(self) -> None:
        self._server.released.set()
        self._server.close()


class GitRepo:
    """A bare repository and a work tree beside it: `write` files, then `commit`."""

    def __init__(self, bare: Path, work: Path) -> None:
        self.bare = bare
        self.work = work
        if not bare.exists():
            git("init", "--bare", "--quiet", "--initial-branch=main", str(bare))
            work.mkdir(parents=True)

    def write(self, rel: str, content: str | bytes) -> None:
        path = self.work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    def remove(self, rel: str) -> None:
        target = self.work / rel
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    def copy_tree(self, src: Path, rel: str) -> None:
        shutil.copytree(src, self.work / rel, dirs_exist_ok=True)

    def commit(self, message: str = "update", branch: str = "main") -> str:
        where = ["--git-dir", str(self.bare), "--work-tree", str(self.work)]
        git(*where, "symbolic-ref", "HEAD", f"refs/heads/{branch}")
        git(*where, "add", "-A")
        git(*where, "commit", "--quiet", "--allow-empty", "-m", message)
        return git(*where, "rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        git("--git-dir", str(self.bare), "tag", "-a", "-m", name, name)


def self_signed_tls(directory: Path) -> tuple[str, tuple[Path, Path]]:
    """A fresh CA and a server certificate for 127.0.0.1 it issued: (the CA's PEM, (cert file, key file))."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Kubemart Git Test CA"))
        .issuer_name(name("Kubemart Git Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("git.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca.public_bytes(serialization.Encoding.PEM).decode(), (cert_file, key_file)
