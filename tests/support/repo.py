"""A real Helm chart repository served over HTTP on 127.0.0.1, built with the real helm CLI.

It can also misbehave the ways hostile or broken catalog servers do: serve any bytes as the index with
any headers (a double-gzip bomb, an alias bomb), or trickle the index a byte at a time.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from .cluster import BIN

TEMPLATES = Path(__file__).resolve().parents[1] / "charts" / "hello" / "templates"


@dataclass
class RequestLog:
    entries: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, headers: Mapping[str, str]) -> None:
        with self.lock:
            self.entries.append((method, path, dict(headers)))

    def paths(self) -> list[str]:
        with self.lock:
            return [p for _, p, _ in self.entries]


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.log.add("GET", self.path, dict(self.headers))
        if self.server.basic_auth and self.headers.get("Authorization") != self.server.basic_auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="charts"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.server.fail_with:
            self.send_error(self.server.fail_with)
            return
        if self.server.fail_charts and self.path.endswith(".tgz"):
            self.send_error(self.server.fail_charts)
            return
        if self.server.garbage and self.path.endswith("index.yaml"):
            self._send_raw(b"{{ this is not an index", {})
            return
        if self.server.raw_index is not None and self.path.endswith("index.yaml"):
            self._send_raw(*self.server.raw_index)
            return
        if self.server.trickle_every is not None and self.path.endswith("index.yaml"):
            self._trickle(self.server.trickle_every)
            return
        super().do_GET()

    def _send_raw(self, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self, every: float) -> None:
        size = 1_000_000
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for _ in range(size):
                self.wfile.write(b"#")
                self.wfile.flush()
                time.sleep(every)
                if self.server.trickle_every is None:
                    return
        except OSError:
            pass  # the client gave up

    def _index_etag(self) -> str | None:
        target = Path(self.server.root) / "index.yaml"
        if not self.path.endswith("index.yaml") or not target.exists():
            return None
        if self.server.raw_index is not None or self.server.trickle_every is not None:
            return None
        return '"' + hashlib.sha256(target.read_bytes()).hexdigest()[:16] + '"'

    def end_headers(self) -> None:
        # An ETag from the content, so that conditional requests work as with real repositories.
        etag = self._index_etag()
        if etag:
            self.send_header("ETag", etag)
        super().end_headers()

    def send_head(self) -> Any:
        etag = self._index_etag()
        if etag and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.end_headers()
            return None
        return super().send_head()

    def log_message(self, fmt: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    root: str
    log: RequestLog
    fail_with: int | None = None
    fail_charts: int | None = None
    basic_auth: str | None = None
    garbage: bool = False
    raw_index: tuple[bytes, Mapping[str, str]] | None = None
    trickle_every: float | None = None


class ChartRepo:
    """Charts made from parameters, packaged with `helm package`, indexed with `helm repo index`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.src = root / "src"
        self.public = root / "public"
        self.public.mkdir(parents=True)
        self.src.mkdir()
        self._server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(self.public)))
        self._server.root = str(self.public)
        self._server.log = RequestLog()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.reindex()

    @property
    def log(self) -> RequestLog:
        return self._server.log

    def fail(self, status: int | None) -> None:
        self._server.fail_with = status

    def require_basic_auth(self, username: str, password: str) -> None:
        import base64

        self._server.basic_auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def fail_chart_downloads(self, status: int | None) -> None:
        self._server.fail_charts = status

    def serve_garbage(self, on: bool) -> None:
        self._server.garbage = on

    def serve_index_bytes(self, body: bytes | None, headers: Mapping[str, str] | None = None) -> None:
        """Serve `body` with `headers` as index.yaml (no ETag); None goes back to the real index."""
        self._server.raw_index = None if body is None else (body, dict(headers or {}))

    def trickle_index(self, every: float | None) -> None:
        """Send index.yaml one byte every `every` seconds (declaring a megabyte); None stops it."""
        self._server.trickle_every = every

    def index_requests(self) -> int:
        return sum(1 for p in self.log.paths() if p.endswith("index.yaml"))

    def add_chart(
        self,
        name: str,
        version: str,
        *,
        annotations: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        schema: Mapping[str, Any] | None = None,
        description: str = "A test app",
        extra_templates: Mapping[str, str] | None = None,
        reindex: bool = True,
        sign: tuple[str, Path] | None = None,
        kube_version: str | None = None,
    ) -> Path:
        chart = self.src / f"{name}-{version}" / name
        (chart / "templates").mkdir(parents=True)
        meta: dict[str, Any] = {
            "apiVersion": "v2",
            "name": name,
            "version": version,
            "appVersion": version,
            "description": description,
            "keywords": ["test", name],
        }
        if annotations:
            meta["annotations"] = dict(annotations)
        if kube_version:
            meta["kubeVersion"] = kube_version
        (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
        base = {"replicaCount": 1, "image": f"registry.invalid/{name}:{version}", "message": "hello"}
        (chart / "values.yaml").write_text(yaml.safe_dump({**base, **(values or {})}))
        if schema is not None:
            (chart / "values.schema.json").write_text(json.dumps(schema))
        for t in TEMPLATES.iterdir():
            shutil.copy(t, chart / "templates" / t.name)
        for fname, text in (extra_templates or {}).items():
            (chart / "templates" / fname).write_text(text)
        # With `sign` (key name, secret keyring) helm writes the .prov next to the archive.
        signing = ["--sign", "--key", sign[0], "--keyring", str(sign[1])] if sign else []
        subprocess.run(
            [str(BIN / "helm"), "package", str(chart), "-d", str(self.public), *signing],
            check=True,
            capture_output=True,
        )
        if reindex:
            self.reindex()
        return self.public / f"{name}-{version}.tgz"

    def remove_chart(self, name: str, version: str | None = None) -> None:
        for tgz in self.public.glob(f"{name}-*.tgz"):
            if version is None or tgz.name == f"{name}-{version}.tgz":
                tgz.unlink()
        self.reindex()

    def reindex(self) -> None:
        index = self.public / "index.yaml"
        index.unlink(missing_ok=True)
        subprocess.run(
            [str(BIN / "helm"), "repo", "index", str(self.public), "--url", self.url],
            check=True,
            capture_output=True,
        )
        # helm stamps `generated:` with the time; drop it so an unchanged repo serves identical bytes.
        doc = yaml.safe_load(index.read_text())
        doc.pop("generated", None)
        for entries in doc.get("entries", {}).values():
            for e in entries:
                e.pop("created", None)
        index.write_text(yaml.safe_dump(doc))

    def close(self) -> None:
        self._server.trickle_every = None
        self._server.shutdown()
        self._server.server_close()
