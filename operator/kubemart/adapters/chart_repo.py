"""HTTP to Helm chart repositories: conditional index.yaml fetches and verified, cached chart downloads.

This is the only module that talks HTTP to a chart repository. Every httpx failure leaves it as a
`RepoError` with a stable `reason`, a one-sentence `message` that names the URL (never a
credential) and a `retryable` hint; no httpx exception escapes.

Credentials are sent per request, never set on the client, so a client shared across requests
cannot carry one repository's secret to another host. On a redirect to a different origin httpx
drops the Authorization header itself (except for a plain http -> https upgrade of the same host);
the tests pin that behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from kubemart import __version__

MAX_REDIRECTS = 5

Reason = Literal[
    "RepositoryUnreachable",
    "RepositoryAuthFailed",
    "RepositoryRateLimited",
    "RepositoryServerError",
    "InvalidRepositoryURL",
    "IndexNotFound",
    "IndexTooLarge",
    "UnexpectedResponse",
    "TooManyRedirects",
    "TLSError",
    "ChartTooLarge",
    "ChartDigestInvalid",
    "ChartDigestMismatch",
    "ChartDownloadFailed",
    "ChartCacheError",
]

_Kind = Literal["index", "chart"]

# RFC 6750 tokens are visible ASCII; anything else would be rejected (and echoed) by the HTTP layer.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HASH_BLOCK = 1024 * 1024


class RepoError(Exception):
    """A chart repository request failed.

    `reason` is a stable CamelCase word for status conditions, `message` one sentence for
    humans (names the URL, never a credential), `retryable` whether trying again soon may help.
    """

    def __init__(self, reason: Reason, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"RepoError(reason={self.reason!r}, retryable={self.retryable}, message={self.message!r})"


@dataclass(frozen=True)
class RepoAuth:
    """How to authenticate to one repository: basic (username/password) or bearer (token), plus a CA.

    `ca_pem` is trusted in addition to the default CAs (certifi, or SSL_CERT_FILE/SSL_CERT_DIR).
    """

    username: str | None = None
    password: str | None = None
    token: str | None = None
    ca_pem: str | None = None

    def __post_init__(self) -> None:
        # The messages never include the values: they end up in logs and status conditions.
        if self.token is not None and (self.username is not None or self.password is not None):
            raise ValueError("RepoAuth takes either a username/password or a token, not both")
        if self.password is not None and self.username is None:
            raise ValueError("RepoAuth has a password but no username")
        if self.token is not None and not _TOKEN.fullmatch(self.token):
            raise ValueError(
                "RepoAuth token is empty or contains whitespace, control or non-ASCII characters"
            )

    @property
    def has_credentials(self) -> bool:
        return self.username is not None or self.token is not None

    def __repr__(self) -> str:
        def hidden(value: str | None) -> str:
            return "None" if value is None else "'***'"

        ca = "None" if self.ca_pem is None else f"<{len(self.ca_pem)} chars of PEM>"
        return (
            f"RepoAuth(username={self.username!r}, password={hidden(self.password)}, "
            f"token={hidden(self.token)}, ca_pem={ca})"
        )


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
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": f"kubemart/{__version__}"},
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
) -> IndexFetch:
    """GET `<url>/index.yaml`, conditionally when `etag`/`last_modified` from the last fetch are given."""
    index_url = _index_url(_check_url(url, "index"))
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with client.stream(
            "GET", index_url, headers=headers, auth=_httpx_auth(auth), follow_redirects=True
        ) as resp:
            final_url = str(resp.url)
            new_etag = resp.headers.get("ETag")
            new_last_modified = resp.headers.get("Last-Modified")
            if resp.status_code == 304:
                if not headers:
                    raise RepoError(
                        "UnexpectedResponse",
                        f"{_safe_url(final_url)} answered 304 Not Modified to an unconditional request; "
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
                raise _status_error(resp, "index")
            hasher = hashlib.sha256()
            chunks: list[bytes] = []

            def too_large() -> RepoError:
                return RepoError(
                    "IndexTooLarge",
                    f"{_safe_url(final_url)} is larger than the {_mib(max_bytes)} limit for an index; "
                    "raise the limit or split the repository.",
                )

            async for chunk in _capped(resp, max_bytes, too_large):
                hasher.update(chunk)
                chunks.append(chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _transport_error(exc, index_url, "index") from exc
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
    cache_dir: Path,
    auth: RepoAuth | None = None,
    max_bytes: int = 20 * 1024 * 1024,
) -> Path:
    """The path of `cache_dir/<sha256hex>.tgz` for the chart at `url`, downloading it unless cached.

    With `expected_digest` (bare hex, as in Helm indexes, or "sha256:<hex>") a cached copy is used
    without any request and a download must match it; without, the chart is always downloaded and
    named by its own digest. Only verified files ever get a digest name.
    """
    want = _parse_digest(expected_digest, url) if expected_digest is not None else None
    _check_url(url, "chart")
    if want is not None:
        cached = cache_dir / f"{want}.tgz"
        if await asyncio.to_thread(_cached_copy_ok, cached, want):
            return cached
    tmp: Path | None = None
    try:
        await asyncio.to_thread(cache_dir.mkdir, parents=True, exist_ok=True)
        # Not in a thread: a cancellation between creating the file and recording its name would leak it.
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=cache_dir)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as fh:
            got = await _download_to(client, url, fh, auth, max_bytes)
            await asyncio.to_thread(_flush_and_sync, fh)
        if want is not None and got != want:
            raise RepoError(
                "ChartDigestMismatch",
                f"The chart downloaded from {_safe_url(url)} has sha256 {got} but the repository index "
                f"says {want}; the repository is serving a different file than it indexed, so re-sync it "
                "or ask its maintainer to rebuild the index.",
            )
        target = cache_dir / f"{got}.tgz"
        # Same-directory rename is atomic: readers see no file or the whole verified one.
        await asyncio.to_thread(os.replace, tmp, target)
        tmp = None
        return target
    except OSError as exc:
        raise RepoError(
            "ChartCacheError",
            f"Could not write the chart from {_safe_url(url)} to the cache directory {cache_dir} "
            f"({exc.strerror or exc}); check that it exists, is writable and has free space.",
            retryable=True,
        ) from exc
    finally:
        if tmp is not None:
            # Synchronous on purpose: it must also run when the task is being cancelled.
            with contextlib.suppress(OSError):
                tmp.unlink()


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


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else {"http": 80, "https": 443}.get(scheme)


async def _download_to(
    client: httpx.AsyncClient, url: str, fh: IO[bytes], auth: RepoAuth | None, max_bytes: int
) -> str:
    """Stream the chart into `fh`; its sha256 hex."""
    hasher = hashlib.sha256()

    def too_large() -> RepoError:
        return RepoError(
            "ChartTooLarge",
            f"The chart at {_safe_url(url)} is larger than the {_mib(max_bytes)} limit for a chart; "
            "raise the limit if the chart is genuine.",
        )

    try:
        async with client.stream("GET", url, auth=_httpx_auth(auth), follow_redirects=True) as resp:
            if not resp.is_success:
                raise _status_error(resp, "chart")
            async for chunk in _capped(resp, max_bytes, too_large):
                hasher.update(chunk)
                await asyncio.to_thread(fh.write, chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _transport_error(exc, url, "chart") from exc
    return hasher.hexdigest()


async def _capped(
    resp: httpx.Response, max_bytes: int, too_large: Callable[[], RepoError]
) -> AsyncIterator[bytes]:
    """The (decoded) body in chunks, stopping with `too_large()` as soon as it passes `max_bytes`."""
    declared = resp.headers.get("Content-Length")
    # A declared length lets us refuse before reading; a compressed one is only a lower bound.
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large()
    total = 0
    async for chunk in resp.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise too_large()
        yield chunk


def _cached_copy_ok(path: Path, want: str) -> bool:
    """Whether `path` holds the bytes with sha256 `want`; a corrupt copy is removed."""
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(_HASH_BLOCK):
                hasher.update(block)
    except OSError:
        return False
    if hasher.hexdigest() == want:
        return True
    with contextlib.suppress(OSError):
        path.unlink()
    return False


def _flush_and_sync(fh: IO[bytes]) -> None:
    # Without fsync a crash could leave a digest-named file with missing bytes.
    fh.flush()
    os.fsync(fh.fileno())


def _parse_digest(digest: str, url: str) -> str:
    hexdigest = digest.strip().lower().removeprefix("sha256:")
    if not _SHA256_HEX.fullmatch(hexdigest):
        raise RepoError(
            "ChartDigestInvalid",
            f"The repository index gives {digest!r} as the digest of {_safe_url(url)}, which is not a "
            "sha256 digest; ask the repository's maintainer to rebuild the index.",
        )
    return hexdigest


def _index_url(repo_url: str) -> str:
    # Like Helm: index.yaml joins the path; a query (some repositories authenticate by it) is kept.
    parts = urlsplit(repo_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/index.yaml", fragment=""))


def _check_url(url: str, kind: _Kind) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return url
    if scheme == "oci" and kind == "index":
        message = f"{_safe_url(url)} is an OCI registry, which has no index.yaml; use an http(s) chart repository URL."
    else:
        message = f"{_safe_url(url)} is not an http:// or https:// URL; fix the {_what(kind)} URL."
    raise RepoError("InvalidRepositoryURL" if kind == "index" else "ChartDownloadFailed", message)


def _httpx_auth(auth: RepoAuth | None) -> httpx.Auth | None:
    # None (rather than the client's default) so credentials come only from the caller.
    if auth is None:
        return None
    if auth.token is not None:
        return _BearerAuth(auth.token)
    if auth.username is not None:
        return httpx.BasicAuth(auth.username, auth.password or "")
    return None


def _status_error(resp: httpx.Response, kind: _Kind) -> RepoError:
    code = resp.status_code
    status = f"{code} {resp.reason_phrase}".strip()
    where = _safe_url(str(resp.url))
    if code in (401, 403):
        return RepoError(
            "RepositoryAuthFailed",
            f"{where} answered {status}; check the repository's credentials and that they grant read access.",
        )
    if code == 429:
        return RepoError(
            "RepositoryRateLimited",
            f"{where} answered {status}; the repository is rate-limiting requests, so retry later.",
            retryable=True,
        )
    if kind == "index":
        if code == 404:
            return RepoError(
                "IndexNotFound",
                f"{where} answered {status}; check that the URL is a Helm chart repository "
                "(the directory that holds index.yaml).",
            )
        if code >= 500:
            return RepoError(
                "RepositoryServerError",
                f"{where} answered {status}; the repository server is failing, so retry later.",
                retryable=True,
            )
        return RepoError(
            "UnexpectedResponse",
            f"{where} answered {status} instead of an index; check the repository URL.",
        )
    return RepoError(
        "ChartDownloadFailed",
        f"Downloading the chart from {where} failed with {status}; "
        + ("the server is failing, so retry later." if code >= 500 else "re-sync the repository's index."),
        retryable=code >= 500,
    )


def _transport_error(exc: Exception, url: str, kind: _Kind) -> RepoError:
    where = _safe_url(url)
    if isinstance(exc, httpx.TooManyRedirects):
        return RepoError(
            "TooManyRedirects",
            f"{where} redirected more than {MAX_REDIRECTS} times; fix the URL or the server's redirects.",
        )
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return RepoError(
            "InvalidRepositoryURL" if kind == "index" else "ChartDownloadFailed",
            f"{where} (or a redirect from it) is not a valid http(s) URL; fix the {_what(kind)} URL.",
        )
    tls = _tls_failure(exc)
    if tls is not None:
        detail, untrusted = tls
        hint = (
            "if the server uses a private CA, set that CA's PEM in the repository's settings"
            if untrusted
            else "check that the server speaks HTTPS on that port"
        )
        return RepoError("TLSError", f"TLS with {where} failed ({detail}); {hint}.")
    if isinstance(exc, httpx.TimeoutException):
        phase = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for data"
        return RepoError(
            "RepositoryUnreachable",
            f"Timed out {phase} from {where}; check that the server is up and reachable from the operator.",
            retryable=True,
        )
    if isinstance(exc, httpx.TransportError):
        return RepoError(
            "RepositoryUnreachable",
            f"Could not get {where} ({_network_detail(exc)}); check the URL and that the server is reachable "
            "from the operator.",
            retryable=True,
        )
    # DecodingError (a bad Content-Encoding) and any future httpx error.
    return RepoError(
        "UnexpectedResponse",
        f"The response from {where} could not be read ({type(exc).__name__}); check the server.",
    )


def _tls_failure(exc: Exception) -> tuple[str, bool] | None:
    """Why a handshake failed and whether for an untrusted certificate; None if `exc` is no TLS failure.

    A failed handshake is configuration, not a network blip, so it is reported apart and not retried.
    """
    if not isinstance(exc, httpx.ConnectError):
        return None
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or cause.reason or "certificate verification failed", True
        # EOF/syscall errors mean the connection dropped mid-handshake: that is a network problem.
        if isinstance(cause, ssl.SSLError) and not isinstance(
            cause, (ssl.SSLEOFError, ssl.SSLSyscallError, ssl.SSLZeroReturnError)
        ):
            return cause.reason or str(cause), False
    return None


def _network_detail(exc: Exception) -> str:
    """The innermost OS-level reason ("Connection refused"), which beats anyio's "All connection attempts failed"."""
    detail = str(exc).strip() or type(exc).__name__
    for cause in _chain(exc):
        if isinstance(cause, socket.gaierror) and cause.strerror:
            detail = cause.strerror
        elif isinstance(cause, OSError) and cause.errno is not None and cause.errno > 0:
            detail = os.strerror(cause.errno)
    return detail[:200]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _safe_url(url: str) -> str:
    """`url` without userinfo, query or fragment: those are where credentials hide (presigned URLs)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<unparseable URL>"


def _what(kind: _Kind) -> str:
    return "repository" if kind == "index" else "chart"


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"
