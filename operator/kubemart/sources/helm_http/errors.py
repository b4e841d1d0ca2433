"""How a chart repository's failures are reported: one `RepoError` per failure, with a stable reason.

Every httpx failure leaves the helm HTTP source as a `RepoError`: a CamelCase `reason`, one sentence
that names the URL (never a credential: no user-info, no query) and a `retryable` hint. What the server
says about itself (its reason phrase, the URL it redirected to) is cut before it goes into a message.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from kubemart.domain.clip import one_line
from kubemart.sources.base import SourceError

MAX_REDIRECTS = 5
URL_IN_MESSAGES = 200
"""Characters of a URL a message quotes."""

Reason = Literal[
    "RepositoryUnreachable",
    "RepositoryTimeout",
    "RepositoryAuthFailed",
    "RepositoryRateLimited",
    "RepositoryServerError",
    "InvalidRepositoryURL",
    "InvalidContentEncoding",
    "IndexNotFound",
    "IndexTooLarge",
    "UnexpectedResponse",
    "TooManyRedirects",
    "TLSError",
    "ChartTooLarge",
    "ChartDigestInvalid",
    "ChartDigestMismatch",
    "ChartDownloadFailed",
    "ChartNotFound",
    "InvalidChartURL",
    "ChartCacheError",
]

Kind = Literal["index", "chart"]


class RepoError(SourceError):
    """A chart repository request failed (see the module docstring)."""

    def __init__(self, reason: Reason, message: str, *, retryable: bool = False) -> None:
        super().__init__(reason, message, retryable=retryable)
        self.reason: Reason = reason


def status_error(resp: httpx.Response, kind: Kind) -> RepoError:
    code = resp.status_code
    status = f"{code} {one_line(resp.reason_phrase, 40)}".strip()
    where = safe_url(str(resp.url))
    if code in (401, 403):
        return RepoError(
            "RepositoryAuthFailed",
            f"{where} answered {status}; check the repository's credentials and that they grant read access.",
            # A fixed Secret is read at the next attempt.
            retryable=True,
        )
    if code == 429:
        return RepoError(
            "RepositoryRateLimited",
            f"{where} answered {status}; the repository is rate-limiting requests, so retry later.",
            retryable=True,
        )
    if code >= 500 or code == 408:
        return RepoError(
            "RepositoryServerError",
            f"{where} answered {status}; the repository server is failing, so retry later.",
            retryable=True,
        )
    if kind == "index":
        if code == 404:
            return RepoError(
                "IndexNotFound",
                f"{where} answered {status}; check that the URL is a Helm chart repository "
                "(the directory that holds index.yaml).",
            )
        return RepoError(
            "UnexpectedResponse",
            f"{where} answered {status} instead of an index; check the repository URL.",
        )
    return RepoError(
        "ChartNotFound" if code in (404, 410) else "ChartDownloadFailed",
        f"Downloading the chart from {where} failed with {status}; the repository's index names a chart "
        "it does not serve, so re-sync the source or ask the repository's maintainer to rebuild the index.",
    )


def transport_error(exc: Exception, url: str, kind: Kind) -> RepoError:
    where = safe_url(url)
    if isinstance(exc, httpx.TooManyRedirects):
        return RepoError(
            "TooManyRedirects",
            f"{where} redirected more than {MAX_REDIRECTS} times; fix the URL or the server's redirects.",
        )
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return RepoError(
            "InvalidRepositoryURL" if kind == "index" else "InvalidChartURL",
            f"{where} (or a redirect from it) is not a valid http(s) URL; fix the {what(kind)} URL.",
        )
    tls = _tls_failure(exc)
    if tls is not None:
        detail, untrusted = tls
        hint = (
            "if the server uses a private CA, set that CA's PEM in the repository's settings"
            if untrusted
            else "check that the server speaks HTTPS on that port"
        )
        return RepoError("TLSError", f"TLS with {where} failed ({one_line(detail, 120)}); {hint}.")
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
    return RepoError(
        "UnexpectedResponse",
        f"The response from {where} could not be read ({type(exc).__name__}); check the server.",
        retryable=True,
    )


def deadline_error(url: str, kind: Kind, seconds: float) -> RepoError:
    return RepoError(
        "RepositoryTimeout",
        f"{safe_url(url)} did not send the whole {what(kind)} within {seconds:g}s; the server or the network "
        "is too slow (or trickling on purpose), so it is tried again later.",
        retryable=True,
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
    return one_line(detail, 200)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def safe_url(url: str) -> str:
    """`url` without user-info, query or fragment (where credentials hide: presigned URLs), cut short."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return one_line(urlunsplit((parts.scheme, host, parts.path, "", "")), URL_IN_MESSAGES)
    except ValueError:
        return "<unparseable URL>"


def what(kind: Kind) -> str:
    return "repository" if kind == "index" else "chart"


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"
