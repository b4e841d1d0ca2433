"""The helm HTTP source's client against a real HTTP(S) server on 127.0.0.1: no mocks of httpx."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import hashlib
import ipaddress
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubemart import __version__
from kubemart.sources.cache import ChartCache
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.helm_http.client import (
    IndexFetch,
    chart_auth,
    download_chart,
    fetch_index,
    make_client,
    resolve_chart_url,
)
from kubemart.sources.helm_http.errors import MAX_REDIRECTS, RepoError
from support.bombs import double_gzip

INDEX = b"apiVersion: v1\nentries:\n  app:\n  - name: app\n    version: 1.0.0\n    urls: [app-1.0.0.tgz]\n"
INDEX_DIGEST = "sha256:" + hashlib.sha256(INDEX).hexdigest()
CHART = b"\x1f\x8b" + bytes(range(256)) * 64  # stands in for a .tgz: only the bytes matter here
CHART_HEX = hashlib.sha256(CHART).hexdigest()
MiB = 1024 * 1024

Route = Callable[[BaseHTTPRequestHandler], None]


# --- a real repository server -------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # names lower-cased


class RepoServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port> serving `routes` by path and recording requests."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.scheme = "https" if tls else "http"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(urlsplit(self.path).path)
                if route is None:
                    reply(404, b"not found")(self)
                else:
                    route(self)

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            # Handshakes a client rejects fail in accept(), which socketserver ignores as an OSError.
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if urlsplit(s.path).path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return route


def redirect(location: str, status: int = 302) -> Route:
    return reply(status, headers={"Location": location})


class Firehose:
    """Sends up to `total` bytes, counting what the socket accepted before the client hung up."""

    def __init__(self, total: int, *, declare_length: bool) -> None:
        self.total = total
        self.declare_length = declare_length
        self.sent = 0
        self.done = threading.Event()

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        chunk = b"x" * 65536
        try:
            h.send_response(200)
            if self.declare_length:
                h.send_header("Content-Length", str(self.total))
            h.end_headers()  # no length: the body ends when the connection closes (HTTP/1.0)
            while self.sent < self.total:
                h.wfile.write(chunk)
                self.sent += len(chunk)
        except OSError:
            pass
        finally:
            self.done.set()


@pytest.fixture
def server() -> Iterator[RepoServer]:
    s = RepoServer()
    yield s
    s.close()


def fetch(
    url: str, *, client_auth: RepoAuth | None = None, timeout: float = 10.0, **kwargs: Any
) -> IndexFetch:
    async def go() -> IndexFetch:
        async with make_client(auth=client_auth, timeout=timeout) as client:
            return await fetch_index(client, url, **kwargs)

    return asyncio.run(go())


def fetch_error(url: str, **kwargs: Any) -> RepoError:
    with pytest.raises(RepoError) as info:
        fetch(url, **kwargs)
    return info.value


def download(url: str, cache_dir: Path, expected_digest: str | None, **kwargs: Any) -> Path:
    async def go() -> Path:
        async with make_client(auth=None) as client:
            return await download_chart(
                client, url, expected_digest=expected_digest, cache=ChartCache(cache_dir), **kwargs
            )

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- index fetches ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/repo", "/repo/"])
def test_first_fetch_returns_body_digest_and_etag(server: RepoServer, path: str) -> None:
    server.routes["/repo/index.yaml"] = reply(
        200, INDEX, {"ETag": '"v1"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )

    got = fetch(server.url(path))

    assert got == IndexFetch(
        not_modified=False,
        body=INDEX,
        digest=INDEX_DIGEST,
        etag='"v1"',
        last_modified="Wed, 21 Oct 2015 07:28:00 GMT",
        url=server.url("/repo/index.yaml"),
    )
    (seen,) = server.seen
    assert seen.path == "/repo/index.yaml"
    assert seen.headers["user-agent"] == f"kubemart/{__version__}"
    assert "if-none-match" not in seen.headers
    assert "authorization" not in seen.headers
    assert "body" not in repr(got)  # a 64 MiB index must not end up in a log line


def test_repo_url_without_a_path_fetches_the_root_index(server: RepoServer) -> None:
    server.routes["/index.yaml"] = reply(200, INDEX)
    assert fetch(server.url()).body == INDEX


def test_repo_url_query_is_kept_after_index_yaml(server: RepoServer) -> None:
    server.routes["/repo/index.yaml"] = reply(200, INDEX)
    assert fetch(server.url("/repo/?sig=abc")).body == INDEX
    assert server.seen[0].path == "/repo/index.yaml?sig=abc"


def test_conditional_refetch_with_etag_is_not_modified(server: RepoServer) -> None:
    def route(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == '"v1"':
            reply(304, headers={"ETag": '"v1"'})(h)
        else:
            reply(200, INDEX, {"ETag": '"v1"'})(h)

    server.routes["/index.yaml"] = route
    first = fetch(server.url())
    again = fetch(server.url(), etag=first.etag)

    assert again == IndexFetch(
        not_modified=True,
        body=None,
        digest=None,
        etag='"v1"',
        last_modified=None,
        url=server.url("/index.yaml"),
    )
    assert server.seen[1].headers["if-none-match"] == '"v1"'
    assert "if-modified-since" not in server.seen[1].headers


def test_conditional_refetch_with_last_modified(server: RepoServer) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"

    def route(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-Modified-Since") == stamp:
            reply(304)(h)  # no validators repeated: the caller's are kept
        else:
            reply(200, INDEX, {"Last-Modified": stamp})(h)

    server.routes["/index.yaml"] = route
    first = fetch(server.url())
    assert first.last_modified == stamp
    assert first.etag is None

    again = fetch(server.url(), last_modified=first.last_modified)
    assert again.not_modified
    assert again.last_modified == stamp
    assert server.seen[1].headers["if-modified-since"] == stamp


def test_changed_index_is_refetched_despite_an_old_etag(server: RepoServer) -> None:
    server.routes["/index.yaml"] = reply(200, INDEX + b"# v2\n", {"ETag": '"v2"'})
    got = fetch(server.url(), etag='"v1"')
    assert not got.not_modified
    assert got.etag == '"v2"'
    server.routes["/index.yaml"] = reply(200, INDEX)  # validators dropped: the old ones are stale
    assert fetch(server.url(), etag='"v2"').etag is None
    assert got.digest == "sha256:" + hashlib.sha256(INDEX + b"# v2\n").hexdigest()


def test_not_modified_to_an_unconditional_request_is_an_error(server: RepoServer) -> None:
    server.routes["/index.yaml"] = reply(304)
    assert fetch_error(server.url()).reason == "UnexpectedResponse"


# --- credentials --------------------------------------------------------------------------------


def test_basic_auth_is_sent(server: RepoServer) -> None:
    server.routes["/index.yaml"] = reply(200, INDEX)
    fetch(server.url(), auth=RepoAuth(username="alice", password="s3cret"))
    assert server.seen[0].headers["authorization"] == "Basic YWxpY2U6czNjcmV0"


def test_bearer_token_is_sent(server: RepoServer) -> None:
    server.routes["/index.yaml"] = reply(200, INDEX)
    fetch(server.url(), auth=RepoAuth(token="tok-123"))
    assert server.seen[0].headers["authorization"] == "Bearer tok-123"


def test_client_auth_is_only_for_tls_credentials_go_per_request(server: RepoServer) -> None:
    server.routes["/index.yaml"] = reply(200, INDEX)
    fetch(server.url(), client_auth=RepoAuth(username="alice", password="s3cret"))
    assert "authorization" not in server.seen[0].headers


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_are_auth_failed_and_never_named(server: RepoServer, status: int) -> None:
    server.routes["/index.yaml"] = reply(status)
    # Credentials in the URL's userinfo and query must not reach the message either.
    url = server.url("/?token=q-secret").replace("://", "://alice:url-secret@")

    err = fetch_error(url, auth=RepoAuth(username="alice", password="s3cret"))

    assert err.reason == "RepositoryAuthFailed"
    assert err.retryable, "a corrected Secret is read at the next attempt"
    assert server.url("/index.yaml") in err.message
    for text in (err.message, str(err), repr(err)):
        for secret in ("s3cret", "url-secret", "q-secret"):
            assert secret not in text


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (404, "IndexNotFound", False),
        (500, "RepositoryServerError", True),
        (503, "RepositoryServerError", True),
        (429, "RepositoryRateLimited", True),
        (400, "UnexpectedResponse", False),
    ],
)
def test_http_errors_map_to_stable_reasons(
    server: RepoServer, status: int, reason: str, retryable: bool
) -> None:
    server.routes["/index.yaml"] = reply(status, b"<html>nope</html>")
    err = fetch_error(server.url())
    assert (err.reason, err.retryable) == (reason, retryable)
    assert server.url("/index.yaml") in err.message


def test_connection_refused_is_unreachable_and_retryable() -> None:
    url = f"http://127.0.0.1:{free_port()}/repo"
    err = fetch_error(url)
    assert err.reason == "RepositoryUnreachable"
    assert err.retryable
    assert f"{url}/index.yaml" in err.message


def test_a_silent_server_times_out_as_unreachable(server: RepoServer) -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        time.sleep(1.0)
        with contextlib.suppress(OSError):  # the client has long gone
            reply(200, INDEX)(h)

    server.routes["/index.yaml"] = slow
    err = fetch_error(server.url(), timeout=0.2)
    assert err.reason == "RepositoryUnreachable"
    assert err.retryable
    assert "Timed out" in err.message


@pytest.mark.parametrize("url", ["ftp://example.test/repo", "oci://registry.test/charts"])
def test_non_http_repository_urls_are_invalid(url: str) -> None:
    err = fetch_error(url)
    assert err.reason == "InvalidRepositoryURL"
    assert not err.retryable


# --- size limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [False, True])
def test_index_over_max_bytes_stops_the_transfer(server: RepoServer, declare_length: bool) -> None:
    hose = Firehose(256 * MiB, declare_length=declare_length)
    server.routes["/index.yaml"] = hose

    err = fetch_error(server.url(), max_bytes=1 * MiB)

    assert err.reason == "IndexTooLarge"
    assert not err.retryable
    assert hose.done.wait(10), "the server kept sending after the client gave up"
    # Only what fits in the socket buffers was sent: the client streamed and hung up.
    assert hose.sent < 32 * MiB


def test_index_exactly_max_bytes_is_accepted(server: RepoServer) -> None:
    server.routes["/index.yaml"] = reply(200, INDEX)
    assert fetch(server.url(), max_bytes=len(INDEX)).body == INDEX
    assert fetch_error(server.url(), max_bytes=len(INDEX) - 1).reason == "IndexTooLarge"


# --- redirects ----------------------------------------------------------------------------------


def test_redirect_loop_is_bounded(server: RepoServer) -> None:
    server.routes["/loop/index.yaml"] = redirect("/loop/index.yaml")
    err = fetch_error(server.url("/loop"))
    assert err.reason == "TooManyRedirects"
    assert len(server.requests_to("/loop/index.yaml")) == 1 + MAX_REDIRECTS


AUTHS = [RepoAuth(username="alice", password="s3cret"), RepoAuth(token="tok-123")]


@pytest.mark.parametrize("auth", AUTHS, ids=["basic", "bearer"])
def test_same_origin_redirect_keeps_credentials_and_reports_the_final_url(
    server: RepoServer, auth: RepoAuth
) -> None:
    server.routes["/old/index.yaml"] = redirect("/new/index.yaml", status=301)
    server.routes["/new/index.yaml"] = reply(200, INDEX)

    got = fetch(server.url("/old"), auth=auth)

    assert got.url == server.url("/new/index.yaml")
    assert "authorization" in server.requests_to("/new/index.yaml")[0].headers


@pytest.mark.parametrize("auth", AUTHS, ids=["basic", "bearer"])
def test_redirect_to_another_host_drops_credentials(server: RepoServer, auth: RepoAuth) -> None:
    # 127.0.0.1 and localhost are different origins though the same socket answers both.
    server.routes["/old/index.yaml"] = redirect(server.url("/new/index.yaml", host="localhost"))
    server.routes["/new/index.yaml"] = reply(200, INDEX)

    got = fetch(server.url("/old"), auth=auth)

    assert got.body == INDEX
    assert got.url == server.url("/new/index.yaml", host="localhost")
    assert "authorization" in server.requests_to("/old/index.yaml")[0].headers
    (moved,) = server.requests_to("/new/index.yaml")
    assert moved.headers["host"] == f"localhost:{server.port}"
    assert "authorization" not in moved.headers


def test_a_redirect_whose_body_is_a_bomb_is_followed_without_reading_it(
    server: RepoServer, double_gzip_bomb: bytes
) -> None:
    def bomb_redirect(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", "/real/index.yaml")
        h.send_header("Content-Encoding", "gzip, gzip")
        h.send_header("Content-Length", str(len(double_gzip_bomb)))
        h.end_headers()
        with contextlib.suppress(OSError):
            h.wfile.write(double_gzip_bomb)

    server.routes["/index.yaml"] = bomb_redirect
    server.routes["/real/index.yaml"] = reply(200, INDEX)
    tracemalloc.start()
    try:
        got = fetch(server.url())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.body == INDEX
    assert peak < 16 * MiB, f"{peak / MiB:.1f} MiB held: the redirect's body was inflated"


# --- chart downloads ----------------------------------------------------------------------------


def test_chart_is_verified_cached_and_then_served_without_a_request(
    server: RepoServer, tmp_path: Path
) -> None:
    server.routes["/charts/app-1.0.0.tgz"] = reply(200, CHART)
    cache = tmp_path / "cache"  # created on demand
    url = server.url("/charts/app-1.0.0.tgz")

    path = download(url, cache, CHART_HEX)

    assert path == cache / f"{CHART_HEX}.tgz"
    assert path.read_bytes() == CHART
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temp file left behind
    assert len(server.seen) == 1

    # Helm's bare hex and the "sha256:" form name the same cache entry.
    assert download(url, cache, f"sha256:{CHART_HEX.upper()}") == path
    assert len(server.seen) == 1


def test_chart_without_expected_digest_is_always_downloaded_and_named_by_its_digest(
    server: RepoServer, tmp_path: Path
) -> None:
    server.routes["/app.tgz"] = reply(200, CHART)
    first = download(server.url("/app.tgz"), tmp_path, None)
    second = download(server.url("/app.tgz"), tmp_path, None)
    assert first == second == tmp_path / f"{CHART_HEX}.tgz"
    assert len(server.seen) == 2
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_chart_credentials_are_sent(server: RepoServer, tmp_path: Path) -> None:
    server.routes["/app.tgz"] = reply(200, CHART)
    download(server.url("/app.tgz"), tmp_path, CHART_HEX, auth=RepoAuth(token="tok-123"))
    assert server.seen[0].headers["authorization"] == "Bearer tok-123"


def test_digest_mismatch_leaves_nothing_in_the_cache(server: RepoServer, tmp_path: Path) -> None:
    server.routes["/app.tgz"] = reply(200, CHART + b"tampered")

    with pytest.raises(RepoError) as info:
        download(server.url("/app.tgz"), tmp_path, CHART_HEX)

    assert info.value.reason == "ChartDigestMismatch"
    assert CHART_HEX in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cached_chart_is_downloaded_again(server: RepoServer, tmp_path: Path) -> None:
    server.routes["/app.tgz"] = reply(200, CHART)
    (tmp_path / f"{CHART_HEX}.tgz").write_bytes(b"truncated")

    path = download(server.url("/app.tgz"), tmp_path, CHART_HEX)

    assert path.read_bytes() == CHART
    assert len(server.seen) == 1


def test_chart_over_max_bytes_leaves_nothing(server: RepoServer, tmp_path: Path) -> None:
    hose = Firehose(256 * MiB, declare_length=False)
    server.routes["/huge.tgz"] = hose

    with pytest.raises(RepoError) as info:
        download(server.url("/huge.tgz"), tmp_path, None, max_bytes=1 * MiB)

    assert info.value.reason == "ChartTooLarge"
    assert list(tmp_path.iterdir()) == []
    assert hose.done.wait(10)
    assert hose.sent < 32 * MiB


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (404, "ChartNotFound", False),
        (410, "ChartNotFound", False),
        (400, "ChartDownloadFailed", False),
        (502, "RepositoryServerError", True),
        (401, "RepositoryAuthFailed", True),
    ],
)
def test_chart_http_errors(
    server: RepoServer, tmp_path: Path, status: int, reason: str, retryable: bool
) -> None:
    server.routes["/app.tgz"] = reply(status)
    with pytest.raises(RepoError) as info:
        download(server.url("/app.tgz"), tmp_path, CHART_HEX)
    assert (info.value.reason, info.value.retryable) == (reason, retryable)
    assert list(tmp_path.iterdir()) == []


def test_malformed_expected_digest_is_refused_before_any_request(server: RepoServer, tmp_path: Path) -> None:
    with pytest.raises(RepoError) as info:
        download(server.url("/app.tgz"), tmp_path, "md5:abc")
    assert info.value.reason == "ChartDigestInvalid"
    assert server.seen == []


def test_unwritable_cache_is_a_cache_error(server: RepoServer, tmp_path: Path) -> None:
    server.routes["/app.tgz"] = reply(200, CHART)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(RepoError) as info:
        download(server.url("/app.tgz"), not_a_dir, CHART_HEX)
    assert info.value.reason == "ChartCacheError"


# --- chart URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo", "chart", "expected"),
    [
        ("https://charts.test/stable", "app-1.0.0.tgz", "https://charts.test/stable/app-1.0.0.tgz"),
        ("https://charts.test/stable/", "app-1.0.0.tgz", "https://charts.test/stable/app-1.0.0.tgz"),
        ("https://charts.test/stable", "pkgs/app-1.0.0.tgz", "https://charts.test/stable/pkgs/app-1.0.0.tgz"),
        ("https://charts.test/stable", "/dl/app-1.0.0.tgz", "https://charts.test/dl/app-1.0.0.tgz"),
        ("https://charts.test", "app-1.0.0.tgz", "https://charts.test/app-1.0.0.tgz"),
        (
            "https://charts.test/stable",
            "https://github.test/rel/app-1.0.0.tgz",
            "https://github.test/rel/app-1.0.0.tgz",
        ),
        # Helm carries the repo's query (an auth token, for some hosts) to relative chart URLs...
        ("https://charts.test/s?sig=1", "app-1.0.0.tgz", "https://charts.test/s/app-1.0.0.tgz?sig=1"),
        # ... but not to another host, nor into an absolute URL.
        ("https://charts.test/s?sig=1", "//cdn.test/app.tgz", "https://cdn.test/app.tgz"),
        ("https://charts.test/s?sig=1", "https://cdn.test/app.tgz?x=2", "https://cdn.test/app.tgz?x=2"),
    ],
)
def test_resolve_chart_url(repo: str, chart: str, expected: str) -> None:
    assert resolve_chart_url(repo, chart) == expected


def test_chart_auth_only_for_the_repositorys_own_host() -> None:
    auth = RepoAuth(username="alice", password="s3cret")
    repo = "https://charts.test/stable"
    assert chart_auth(repo, "https://charts.test/stable/app.tgz", auth) is auth
    assert chart_auth(repo, "https://CHARTS.test:443/other/app.tgz", auth) is auth
    assert chart_auth(repo, "https://github.test/app.tgz", auth) is None
    assert chart_auth(repo, "https://charts.test:8443/app.tgz", auth) is None
    assert chart_auth(repo, "http://charts.test/app.tgz", auth) is None
    assert chart_auth(repo, "https://charts.test/app.tgz", None) is None


# --- RepoAuth -----------------------------------------------------------------------------------


def test_repo_auth_repr_hides_secrets() -> None:
    basic = RepoAuth(username="alice", password="s3cret", ca_pem="-----BEGIN CERTIFICATE-----")
    bearer = RepoAuth(token="tok-123")
    assert "s3cret" not in repr(basic)
    assert "s3cret" not in str(basic)
    assert "alice" in repr(basic)
    assert "tok-123" not in repr(bearer)
    assert "tok-123" not in f"{bearer}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"username": "a", "password": "p", "token": "t"},
        {"password": "p"},
        {"token": "tok\n"},
        {"token": ""},
    ],
)
def test_repo_auth_rejects_ambiguous_or_malformed_credentials(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="RepoAuth") as info:
        RepoAuth(**kwargs)
    for secret in ("p", "t", "tok"):
        assert f"'{secret}" not in str(info.value)


# --- HTTPS with a private CA --------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("repo.test"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RepoServer, str]]:
    """An HTTPS repository whose certificate a fresh private CA issued; yields it and the CA's PEM."""
    ca_key, ca_cert = make_ca("Kubemart Test CA")
    key, cert = issue_server_cert(ca_key, ca_cert)
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert_file.write_text(pem(cert))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    s = RepoServer(tls=ctx)
    s.routes["/index.yaml"] = reply(200, INDEX)
    yield s, pem(ca_cert)
    s.close()


def test_https_trusts_the_repositorys_ca(tls_server: tuple[RepoServer, str]) -> None:
    server, ca_pem = tls_server
    got = fetch(server.url(), client_auth=RepoAuth(ca_pem=ca_pem))
    assert got.body == INDEX
    assert got.url.startswith("https://")


def test_https_with_an_unknown_ca_is_a_tls_error(tls_server: tuple[RepoServer, str]) -> None:
    server, _ = tls_server
    err = fetch_error(server.url())
    assert err.reason == "TLSError"
    assert not err.retryable
    assert server.url("/index.yaml") in err.message


def test_https_with_another_ca_is_a_tls_error(tls_server: tuple[RepoServer, str]) -> None:
    server, _ = tls_server
    _, other_ca = make_ca("Some Other CA")
    err = fetch_error(server.url(), client_auth=RepoAuth(ca_pem=pem(other_ca)))
    assert err.reason == "TLSError"


def test_https_to_a_plain_http_port_is_a_tls_error(server: RepoServer) -> None:
    err = fetch_error(server.url().replace("http://", "https://"))
    assert err.reason == "TLSError"


def test_malformed_ca_pem_is_a_tls_error() -> None:
    with pytest.raises(RepoError) as info:
        make_client(auth=RepoAuth(ca_pem="not a certificate"))
    assert info.value.reason == "TLSError"


def test_make_client_settings() -> None:
    client = make_client(auth=None, timeout=12.0)
    try:
        assert not client.follow_redirects, (
            "followed by the client module, which never reads a redirect's body"
        )
        assert client.max_redirects == MAX_REDIRECTS
        assert client.timeout == httpx.Timeout(12.0, connect=10.0)
        assert client.headers["User-Agent"] == f"kubemart/{__version__}"
        assert client.headers["Accept-Encoding"] == "gzip, deflate", "only what we decode ourselves"
    finally:
        asyncio.run(client.aclose())


# --- encodings: decoded by us, with a bound -----------------------------------------------------


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, 6)


@pytest.fixture(scope="module")
def double_gzip_bomb() -> bytes:
    """256 MiB of zeros gzipped twice: a few kilobytes on the wire."""
    return double_gzip(256 * MiB)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzipped),
        ("x-gzip", gzipped),
        ("deflate", zlib.compress),
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some servers send it
        ("gzip, gzip", lambda d: gzipped(gzipped(d))),
        ("identity", lambda d: d),
    ],
    ids=["gzip", "x-gzip", "deflate", "raw deflate", "gzip twice", "identity"],
)
def test_encoded_index_is_decoded_and_its_digest_is_of_the_decoded_bytes(
    server: RepoServer, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    server.routes["/index.yaml"] = reply(200, encode(INDEX), {"Content-Encoding": encoding})
    got = fetch(server.url())
    assert got.body == INDEX
    assert got.digest == INDEX_DIGEST
    assert server.seen[0].headers["accept-encoding"] == "gzip, deflate"


def test_double_gzip_bomb_stops_at_the_decoded_limit_without_inflating_it(
    server: RepoServer, double_gzip_bomb: bytes
) -> None:
    assert len(double_gzip_bomb) < 4096
    server.routes["/index.yaml"] = reply(200, double_gzip_bomb, {"Content-Encoding": "gzip, gzip"})
    tracemalloc.start()
    try:
        err = fetch_error(server.url(), max_bytes=4 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.reason == "IndexTooLarge"
    assert "decoded" in err.message
    # What was kept: the 4 MiB allowed, and a few 64 KiB steps per layer, never the 256 MiB.
    assert peak < 16 * MiB, f"{peak / MiB:.1f} MiB held while decoding"


@pytest.mark.parametrize(
    ("encoding", "body", "detail"),
    [
        ("br", b"whatever", "br, which was not asked for"),
        ("gzip, gzip, gzip", gzipped(gzipped(gzipped(INDEX))), "stacked 3 content encodings"),
        ("gzip", gzipped(INDEX)[:-12], "cut short"),
        ("gzip", b"not gzip at all", "not valid gzip data"),
        ("gzip", gzipped(INDEX) + b"trailing junk", "not valid gzip data"),
    ],
    ids=["unknown", "three layers", "truncated", "not gzip", "trailing junk"],
)
def test_bad_encodings_are_refused_with_a_reason(
    server: RepoServer, encoding: str, body: bytes, detail: str
) -> None:
    server.routes["/index.yaml"] = reply(200, body, {"Content-Encoding": encoding})
    err = fetch_error(server.url())
    assert err.reason == "InvalidContentEncoding"
    assert detail in err.message
    assert server.url("/index.yaml") in err.message


def test_gzip_members_one_after_another_are_one_body(server: RepoServer) -> None:
    half = len(INDEX) // 2
    body = gzipped(INDEX[:half]) + gzipped(INDEX[half:])
    server.routes["/index.yaml"] = reply(200, body, {"Content-Encoding": "gzip"})
    assert fetch(server.url()).body == INDEX


def test_encoded_chart_bomb_is_too_large_and_leaves_nothing(
    server: RepoServer, tmp_path: Path, double_gzip_bomb: bytes
) -> None:
    server.routes["/app.tgz"] = reply(200, double_gzip_bomb, {"Content-Encoding": "gzip, gzip"})
    with pytest.raises(RepoError) as info:
        download(server.url("/app.tgz"), tmp_path, None, max_bytes=2 * MiB)
    assert info.value.reason == "ChartTooLarge"
    assert not info.value.retryable
    assert list(tmp_path.iterdir()) == []


# --- deadlines: a whole request, not each read ---------------------------------------------------


class Trickle:
    """Declares `size` bytes, then sends one every `every` seconds until the client hangs up."""

    def __init__(self, size: int = 10_000, every: float = 0.1) -> None:
        self.size = size
        self.every = every
        self.done = threading.Event()

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        try:
            h.send_response(200)
            h.send_header("Content-Length", str(self.size))
            h.end_headers()
            for _ in range(self.size):
                h.wfile.write(b"#")
                h.wfile.flush()
                time.sleep(self.every)
        except OSError:
            pass
        finally:
            self.done.set()


def test_a_trickling_index_fails_at_the_deadline(server: RepoServer) -> None:
    trickle = Trickle()
    server.routes["/index.yaml"] = trickle
    started = time.monotonic()
    err = fetch_error(server.url(), deadline=1.0, timeout=5.0)
    took = time.monotonic() - started
    assert err.reason == "RepositoryTimeout"
    assert err.retryable
    assert "within 1s" in err.message
    assert took < 4.0, f"gave up after {took:.1f}s"
    assert trickle.done.wait(5), "the connection was closed"


def test_a_trickling_chart_fails_at_the_deadline_and_leaves_nothing(
    server: RepoServer, tmp_path: Path
) -> None:
    server.routes["/app.tgz"] = Trickle()
    with pytest.raises(RepoError) as info:
        download(server.url("/app.tgz"), tmp_path, CHART_HEX, deadline=1.0)
    assert info.value.reason == "RepositoryTimeout"
    assert info.value.retryable
    assert list(tmp_path.iterdir()) == []


# --- what the server says about itself is cut ---------------------------------------------------


def test_validators_that_are_huge_or_odd_are_not_kept(server: RepoServer) -> None:
    server.routes["/index.yaml"] = reply(200, INDEX, {"ETag": '"' + "e" * 1000 + '"', "Last-Modified": "x"})
    got = fetch(server.url())
    assert got.etag is None
    assert got.last_modified == "x"


def test_a_long_reason_phrase_and_redirect_url_are_cut_in_messages(server: RepoServer) -> None:
    def rude(h: BaseHTTPRequestHandler) -> None:
        h.send_response(500, "Boom \x1b[31m" + "r" * 5000)
        h.send_header("Content-Length", "0")
        h.end_headers()

    long_path = "/" + "p" * 3000
    server.routes["/index.yaml"] = redirect(long_path + "/index.yaml")
    server.routes[long_path + "/index.yaml"] = rude
    err = fetch_error(server.url())
    assert err.reason == "RepositoryServerError"
    assert len(err.message) < 600
    assert "\x1b" not in err.message
