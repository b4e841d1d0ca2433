"""HTTP to Helm chart repositories: conditional index.yaml fetches and verified chart downloads.

This is the only module that talks HTTP to a chart repository. Every failure leaves it as a
`RepoError` (errors.py); no httpx exception escapes. Three bounds hold whatever the server does:
bytes on the wire and bytes decoded (we decode Content-Encoding ourselves, decoding.py), and a
deadline on the whole request, so a server that trickles one byte a second fails at the deadline
instead of holding the sync for ever (httpx's timeouts bound each wait for data, not the whole body).

Credentials are sent per request, never set on the client, so a client shared across requests
cannot carry one repository's secret to another host. On a redirect to a different origin httpx
drops the Authorization header itself (except for a plain http -> https upgrade of the same host);
the tests pin that behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from kubemart import __version__
from kubemart.sources.cache import ChartCache, parse_digest
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.helm_http.decoding import ACCEPT_ENCODING, BoundedDecoder, EncodingError
from kubemart.sources.helm_http.errors import (
    MAX_REDIRECTS,
    Kind,
    RepoError,
    deadline_error,
    mib,
    safe_url,
    status_error,
    transport_error,
    what,
)

DEFAULT_DEADLINE = 60.0
MAX_VALIDATOR = 256
"""Longest ETag or Last-Modified kept (they are stored in status and sent back)."""
_YIELD_EVERY = 1024 * 1024
"""Decoded bytes between two turns given back to the event loop."""


@dataclass(frozen=True)
class IndexFetch:
    """The outcome of one index.yaml fetch; `body` and `digest` are None when not modified."""

    not_modified: bool
    body: bytes | None = field(repr=False)  # up to tens of MiB: keep it out of logs
    digest: str | None
    etag: str | None
    last_modified: str | None
    url: str


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(token='***')"


def make_client(*, auth: RepoAuth | None, timeout: float = 30.0) -> httpx.AsyncClient:
    """An AsyncClient for one repository: bounded redirects, timeouts, and the repository's CA trusted.

    Only `auth.ca_pem` is used here; credentials go on each request (see fetch_index/download_chart).
    """
    return httpx.AsyncClient(
        verify=_ssl_context(auth.ca_pem if auth is not None else None),
        # An unreachable host should fail fast; `read` bounds each wait for data, not the whole body.
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        # Redirects are followed by `_get`, which never reads a redirect's body (httpx would, unbounded).
        follow_redirects=False,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": f"kubemart/{__version__}", "Accept-Encoding": ACCEPT_ENCODING},
    )


def _ssl_context(ca_pem: str | None) -> ssl.SSLContext:
    # httpx's own default (certifi, or SSL_CERT_FILE/SSL_CERT_DIR), so adding a CA never removes one.
    ctx = httpx.create_ssl_context()
    if ca_pem:
        try:
            ctx.load_verify_locations(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise RepoError(
                "TLSError",
                "The CA certificate configured for the repository is not a valid PEM certificate; "
                "fix the CA in the repository's settings.",
            ) from exc
    return ctx


async def fetch_index(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    auth: RepoAuth | None = None,
    max_bytes: int = 64 * 1024 * 1024,
    deadline: float = DEFAULT_DEADLINE,
) -> IndexFetch:
    """GET `<url>/index.yaml`, conditionally when `etag`/`last_modified` from the last fetch are given."""
    index_url = _index_url(check_url(url, "index"))
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(deadline):
            return await _fetch_index(client, index_url, headers, auth, max_bytes, etag, last_modified)
    except TimeoutError:
        raise deadline_error(index_url, "index", deadline) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise transport_error(exc, index_url, "index") from exc


async def _fetch_index(
    client: httpx.AsyncClient,
    index_url: str,
    headers: dict[str, str],
    auth: RepoAuth | None,
    max_bytes: int,
    etag: str | None,
    last_modified: str | None,
) -> IndexFetch:
    async with _get(client, index_url, headers=headers, auth=auth) as resp:
        final_url = str(resp.url)
        new_etag = _validator(resp.headers.get("ETag"))
        new_last_modified = _validator(resp.headers.get("Last-Modified"))
        if resp.status_code == 304:
            if not headers:
                raise RepoError(
                    "UnexpectedResponse",
                    f"{safe_url(final_url)} answered 304 Not Modified to an unconditional request; "
                    "the server or a proxy in front of it is misbehaving.",
                )
            return IndexFetch(
                not_modified=True,
                body=None,
                digest=None,
                # A 304 need not repeat the validators; the ones sent are still current.
                etag=new_etag or etag,
                last_modified=new_last_modified or last_modified,
                url=final_url,
            )
        if not resp.is_success:
            raise status_error(resp, "index")
        hasher = hashlib.sha256()
        chunks: list[bytes] = []

        def too_large() -> RepoError:
            return RepoError(
                "IndexTooLarge",
                f"{safe_url(final_url)} is larger than the {mib(max_bytes)} limit for an index "
                "(decoded); raise the limit or split the repository.",
            )

        async for chunk in _bounded_body(resp, max_bytes, too_large, "index"):
            hasher.update(chunk)
            chunks.append(chunk)
    return IndexFetch(
        not_modified=False,
        body=b"".join(chunks),
        digest=f"sha256:{hasher.hexdigest()}",
        etag=new_etag,
        last_modified=new_last_modified,
        url=final_url,
    )


async def download_chart(
    client: httpx.AsyncClient,
    url: str,
    *,
    expected_digest: str | None,
    cache: ChartCache,
    auth: RepoAuth | None = None,
    max_bytes: int = 20 * 1024 * 1024,
    deadline: float = DEFAULT_DEADLINE,
) -> Path:
    """The path of the chart at `url` in `cache`, downloading it unless a verified copy is there.

    With `expected_digest` (bare hex, as in Helm indexes, or "sha256:<hex>") a cached copy is used
    without any request and a download must match it; without, the chart is always downloaded and
    named by its own digest. Only verified files ever get a digest name.
    """
    want = None
    if expected_digest is not None:
        want = parse_digest(expected_digest)
        if want is None:
            raise RepoError(
                "ChartDigestInvalid",
                f"The repository index gives {expected_digest[:80]!r} as the digest of {safe_url(url)}, which is "
                "not a sha256 digest; ask the repository's maintainer to rebuild the index.",
            )
    check_url(url, "chart")
    if want is not None:
        cached = await cache.verified(want)
        if cached is not None:
            return cached
    try:
        async with asyncio.timeout(deadline), cache.incoming() as incoming:
            await _download_to(client, url, incoming.write, auth, max_bytes)
            if want is not None and incoming.hexdigest != want:
                raise RepoError(
                    "ChartDigestMismatch",
                    f"The chart downloaded from {safe_url(url)} has sha256 {incoming.hexdigest} but the "
                    f"repository index says {want}; the repository is serving a different file than it "
                    "indexed, so re-sync it or ask its maintainer to rebuild the index.",
                )
            path = await cache.commit(incoming)
    except TimeoutError:
        raise deadline_error(url, "chart", deadline) from None
    except OSError as exc:
        raise RepoError(
            "ChartCacheError",
            f"Could not write the chart from {safe_url(url)} to the cache directory {cache.root} "
            f"({exc.strerror or exc}); check that it exists, is writable and has free space.",
            retryable=True,
        ) from exc
    cache.remember(url, path.name.removesuffix(".tgz"))
    return path


async def _download_to(
    client: httpx.AsyncClient,
    url: str,
    write: Callable[[bytes], Any],
    auth: RepoAuth | None,
    max_bytes: int,
) -> None:
    def too_large() -> RepoError:
        return RepoError(
            "ChartTooLarge",
            f"The chart at {safe_url(url)} is larger than the {mib(max_bytes)} limit for a chart; "
            "raise the limit if the chart is genuine.",
        )

    try:
        async with _get(client, url, headers={}, auth=auth) as resp:
            if not resp.is_success:
                raise status_error(resp, "chart")
            async for chunk in _bounded_body(resp, max_bytes, too_large, "chart"):
                await write(chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise transport_error(exc, url, "chart") from exc


@contextlib.asynccontextmanager
async def _get(
    client: httpx.AsyncClient, url: str, *, headers: dict[str, str], auth: RepoAuth | None
) -> AsyncIterator[httpx.Response]:
    """GET `url`, following up to MAX_REDIRECTS redirects without reading their bodies.

    httpx reads (and decodes) the whole body of every redirect it follows, with no bound, so a 302
    could carry a bomb. Here a redirect is closed unread. Where the next request goes, and whether
    it keeps the credentials (not to another origin), is httpx's own redirect rule.
    """
    request = client.build_request("GET", url, headers=headers)
    request_auth = _httpx_auth(auth)
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.send(request, stream=True, auth=request_auth, follow_redirects=False)
        if response.next_request is None:
            try:
                yield response
            finally:
                await response.aclose()
            return
        await response.aclose()
        # The next request already carries the credentials httpx keeps for it (none on another origin).
        request, request_auth = response.next_request, None
    raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)


async def _bounded_body(
    resp: httpx.Response, max_bytes: int, too_large: Callable[[], RepoError], kind: Kind
) -> AsyncIterator[bytes]:
    """The body decoded, in pieces, stopping with `too_large()` as soon as more than `max_bytes` came.

    Both what arrives and what it decodes to are counted, so neither a large body nor a small one
    that inflates enormously is ever held beyond the bound.
    """
    try:
        decoder = BoundedDecoder(resp.headers.get("Content-Encoding"))
    except EncodingError as exc:
        raise _encoding_error(resp, kind, exc) from None
    declared = resp.headers.get("Content-Length", "")
    # A declared length lets us refuse before reading; for an encoded body it is only a lower bound.
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large()
    received = decoded = since_yield = 0
    try:
        async for raw in resp.aiter_raw():
            received += len(raw)
            if received > max_bytes:
                raise too_large()
            for piece in decoder.feed(raw):
                decoded += len(piece)
                if decoded > max_bytes:
                    raise too_large()
                yield piece
                since_yield += len(piece)
                if since_yield >= _YIELD_EVERY:
                    # One received chunk may inflate a lot: let other objects' work run meanwhile.
                    since_yield = 0
                    await asyncio.sleep(0)
        decoder.finish()
    except EncodingError as exc:
        raise _encoding_error(resp, kind, exc) from None


def _encoding_error(resp: httpx.Response, kind: Kind, exc: EncodingError) -> RepoError:
    return RepoError(
        "InvalidContentEncoding",
        f"The {kind} from {safe_url(str(resp.url))} cannot be decoded: {exc}.",
    )


def resolve_chart_url(repo_url: str, chart_url: str) -> str:
    """An index entry's chart URL made absolute, as Helm does: absolute as is, else relative to the repo.

    The repository URL counts as a directory whether or not it ends in "/". Like Helm, a relative URL
    inherits the repository URL's query (some repositories authenticate by it), but only while it
    stays on the repository's host.
    """
    if urlsplit(chart_url).scheme:
        return chart_url
    base = urlsplit(repo_url)
    base_dir = urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + "/", "", ""))
    resolved = urlsplit(urljoin(base_dir, chart_url))
    query = base.query if base.query and resolved.netloc == base.netloc else resolved.query
    return urlunsplit((resolved.scheme, resolved.netloc, resolved.path, query, resolved.fragment))


def chart_auth(repo_url: str, chart_url: str, auth: RepoAuth | None) -> RepoAuth | None:
    """`auth` when `chart_url` is on the repository's own host and port, else None.

    Helm's default (no --pass-credentials): charts an index points at on other hosts (release
    pages, CDNs) never see the repository's credentials. Nor does a plain-http chart of an https repo.
    """
    if auth is None:
        return None
    try:
        repo, chart = urlsplit(repo_url), urlsplit(chart_url)
        same_place = (repo.hostname, _port(repo.scheme, repo.port)) == (
            chart.hostname,
            _port(chart.scheme, chart.port),
        )
    except ValueError:  # an out-of-range port
        return None
    if not same_place or (repo.scheme == "https" and chart.scheme != "https"):
        return None
    return auth


def check_url(url: str, kind: Kind) -> str:
    """`url` if it is http(s); a RepoError that will not go away by retrying otherwise."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return url
    if scheme == "oci" and kind == "index":
        message = f"{safe_url(url)} is an OCI registry, which has no index.yaml; use an http(s) chart repository URL."
    else:
        message = f"{safe_url(url)} is not an http:// or https:// URL; fix the {what(kind)} URL."
    raise RepoError("InvalidRepositoryURL" if kind == "index" else "InvalidChartURL", message)


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else {"http": 80, "https": 443}.get(scheme)


def _validator(value: str | None) -> str | None:
    # Sent back verbatim in the next request and kept in status: a huge or odd one is not kept.
    if value is None or len(value) > MAX_VALIDATOR or not value.isprintable():
        return None
    return value


def _index_url(repo_url: str) -> str:
    # Like Helm: index.yaml joins the path; a query (some repositories authenticate by it) is kept.
    parts = urlsplit(repo_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/index.yaml", fragment=""))


def _httpx_auth(auth: RepoAuth | None) -> httpx.Auth | None:
    # None (rather than the client's default) so credentials come only from the caller.
    if auth is None:
        return None
    if auth.token is not None:
        return _BearerAuth(auth.token)
    if auth.username is not None:
        return httpx.BasicAuth(auth.username, auth.password or "")
    return None
