"""HTTP to one OCI registry (the distribution API, /v2/...): bounded requests and the registry auth flows.

The only module that talks to a registry. Bounds as in the helm source: bytes on the wire and
decoded (`BoundedDecoder`), a deadline on each whole request, redirects followed without reading
their bodies (a blob may live on a CDN; httpx drops the Authorization header on another origin).

Auth (the distribution spec's token flow, which ghcr.io, Docker Hub and most registries use): a
request goes out with what worked for that registry before; a 401 names the scheme. `Basic`: the
Secret's username/password. `Bearer realm=..,service=..,scope=..`: a token is asked from the realm
(with the username/password when there are, else anonymously) and kept until it expires, per scope.
A Secret `token` is sent as the bearer token itself. Credentials go on each request, never on the
client, and the realm must be https (a token request carries the password).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from kubemart.sources.credentials import RepoAuth
from kubemart.sources.helm_http.client import make_client
from kubemart.sources.helm_http.decoding import BoundedDecoder, EncodingError
from kubemart.sources.helm_http.errors import MAX_REDIRECTS, Kind, deadline_error, safe_url, transport_error
from kubemart.sources.oci.errors import OciError, invalid, status_error, too_large
from kubemart.sources.oci.reference import Challenge, Registry, parse_challenge
from kubemart.sources.offload import offload

MAX_JSON = 4 * 1024 * 1024
"""A catalog or tags page, a manifest (distribution's own limit) or a token answer."""
MAX_CONFIG = 1024 * 1024
"""A chart's config blob: Chart.yaml as JSON."""
MAX_TOKENS = 10_000
_INLINE_JSON = 256 * 1024
_MIN_TOKEN_LIFE = 60
_TOKEN_MARGIN = 10

# Process-wide: each registry's last challenge, and bearer tokens by (registry, scope, who).
_schemes: dict[str, Challenge] = {}
_tokens: OrderedDict[tuple[str, str, str], tuple[str, float]] = OrderedDict()


@dataclass(frozen=True)
class Limits:
    chart_max_bytes: int = 20 * 1024 * 1024
    deadline: float = 60.0
    """Seconds for one whole request, body included."""
    concurrency: int = 8
    """Requests in flight to one registry."""


class RegistryClient:
    def __init__(self, registry: Registry, auth: RepoAuth | None, limits: Limits) -> None:
        self.registry = registry
        self._auth = auth
        self.limits = limits
        self._http = make_client(auth=auth, timeout=min(30.0, limits.deadline))
        self._gate = asyncio.Semaphore(limits.concurrency)
        who = ""
        if auth is not None and auth.has_credentials:
            secret = f"{auth.username}\0{auth.password}\0{auth.token}".encode()
            who = hashlib.sha256(secret).hexdigest()[:32]  # a token is never kept under its secret
        self._who = who

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # --- requests --------------------------------------------------------------------------------

    async def get_json(
        self, path_or_url: str, *, scope: str, what: str, accept: str | None = None, max_bytes: int = MAX_JSON
    ) -> tuple[Any, httpx.Headers, bytes]:
        """The JSON document at `path_or_url`, its headers and its bytes. Raises OciError."""
        url = self._url(path_or_url)
        chunks: list[bytes] = []

        async def collect(resp: httpx.Response) -> httpx.Headers:
            async for piece in _bounded(resp, max_bytes, url, what):
                chunks.append(piece)
            return resp.headers

        headers = await self._request("GET", url, scope=scope, what=what, accept=accept, body=collect)
        raw = b"".join(chunks)
        try:
            # A large document is parsed off the event loop (a catalog page of thousands of names).
            doc = await offload(json.loads, raw) if len(raw) > _INLINE_JSON else json.loads(raw)
            return doc, headers, raw
        except (ValueError, RecursionError):
            raise invalid(url, what.capitalize(), "is not valid JSON") from None

    async def head(self, path: str, *, scope: str, what: str, accept: str) -> httpx.Headers:
        async def keep(resp: httpx.Response) -> httpx.Headers:
            return resp.headers

        return await self._request("HEAD", self._url(path), scope=scope, what=what, accept=accept, body=keep)

    async def download(
        self, path: str, *, scope: str, what: str, max_bytes: int, write: Callable[[bytes], Awaitable[None]]
    ) -> None:
        url = self._url(path)

        async def stream(resp: httpx.Response) -> httpx.Headers:
            async for piece in _bounded(resp, max_bytes, url, what):
                await write(piece)
            return resp.headers

        await self._request("GET", url, scope=scope, what=what, accept=None, body=stream)

    # --- the flow --------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        what: str,
        accept: str | None,
        body: Callable[[httpx.Response], Awaitable[httpx.Headers]],
    ) -> httpx.Headers:
        kind: Kind = "chart" if "/blobs/" in url else "index"
        try:
            # The deadline starts once the request may go: waiting for a turn is not the registry's time.
            async with self._gate, asyncio.timeout(self.limits.deadline):
                await self._prepare(scope, what)
                for attempt in range(2):
                    headers = {"Accept": accept} if accept else {}
                    authorization = self._authorization(scope)
                    if authorization:
                        headers["Authorization"] = authorization
                    async with self._send(method, url, headers) as resp:
                        if resp.status_code == 401 and attempt == 0:
                            challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
                            sent = authorization.split(" ", 1)[0].lower() if authorization else None
                            if challenge is not None and await self._answer(challenge, scope, what, sent):
                                continue
                        if not resp.is_success:
                            raise status_error(
                                resp, what, missing=None if "/_catalog" in url else "ChartNotFound"
                            )
                        return await body(resp)
                raise AssertionError("unreachable")  # the second attempt returns or raises
        except TimeoutError:
            raise deadline_error(url, kind, self.limits.deadline) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise transport_error(exc, url, kind) from exc

    @contextlib.asynccontextmanager
    async def _send(self, method: str, url: str, headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        request = self._http.build_request(method, url, headers=headers)
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._http.send(request, stream=True, follow_redirects=False)
            if response.next_request is None:
                try:
                    yield response
                finally:
                    await response.aclose()
                return
            await response.aclose()
            # httpx keeps the Authorization header only on the same origin.
            request = response.next_request
        raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)

    def _authorization(self, scope: str) -> str | None:
        auth = self._auth
        if auth is not None and auth.token is not None:
            return f"Bearer {auth.token}"
        kept = _schemes.get(self.registry.host)
        if kept is not None and kept.scheme == "basic" and auth is not None and auth.username is not None:
            return _basic(auth)
        token = _tokens.get((self.registry.host, scope, self._who))
        if kept is not None and kept.scheme == "bearer" and token is not None and token[1] > time.monotonic():
            return f"Bearer {token[0]}"
        return None

    async def _prepare(self, scope: str, what: str) -> None:
        """A token for `scope` before the request, when the registry is known to want one: saves a 401."""
        kept = _schemes.get(self.registry.host)
        if kept is None or kept.scheme != "bearer" or (self._auth is not None and self._auth.token):
            return
        token = _tokens.get((self.registry.host, scope, self._who))
        if token is None or token[1] <= time.monotonic():
            await self._store_token(kept, scope, what)

    async def _answer(self, challenge: Challenge, scope: str, what: str, sent: str | None) -> bool:
        """Whether a retry can answer the challenge (its credentials or a new token are ready now).

        `sent`: the scheme the refused request carried. Basic credentials refused are wrong; a bearer
        token of ours may have expired early, so one new token is asked (a Secret's token cannot be).
        """
        auth = self._auth
        if auth is not None and auth.token is not None:
            return False
        if challenge.scheme == "basic":
            if sent == "basic" or auth is None or auth.username is None:
                return False
            _schemes[self.registry.host] = challenge
            return True
        if challenge.scheme == "bearer" and "realm" in challenge.params:
            _schemes[self.registry.host] = challenge
            await self._store_token(challenge, challenge.params.get("scope") or scope, what, key=scope)
            return True
        return False

    async def _store_token(self, challenge: Challenge, scope: str, what: str, key: str | None = None) -> None:
        token, life = await self._token(challenge, scope, what)
        where = (self.registry.host, key or scope, self._who)
        _tokens[where] = (token, time.monotonic() + life)
        _tokens.move_to_end(where)
        while len(_tokens) > MAX_TOKENS:
            _tokens.popitem(last=False)

    async def _token(self, challenge: Challenge, scope: str, what: str) -> tuple[str, float]:
        realm = challenge.params["realm"]
        if urlsplit(realm).scheme != "https":
            raise OciError(
                "RepositoryAuthFailed",
                f"The registry {self.registry.host} asks for a token from {safe_url(realm)}, which is not "
                "https; credentials are never sent in clear, so the registry cannot be used.",
            )
        query = {k: v for k, v in (("service", challenge.params.get("service")), ("scope", scope)) if v}
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        headers: dict[str, str] = {}
        auth = self._auth
        if auth is not None and auth.username is not None:
            headers["Authorization"] = _basic(auth)
        chunks: list[bytes] = []
        async with self._send("GET", url, headers) as resp:
            if not resp.is_success:
                raise status_error(resp, f"a token for {what}")
            async for piece in _bounded(resp, MAX_JSON, url, "a token"):
                chunks.append(piece)
        try:
            doc = json.loads(b"".join(chunks))
        except (ValueError, RecursionError):
            raise invalid(url, "The token answer", "is not valid JSON") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token.isprintable() or not token.isascii():
            raise invalid(url, "The token answer", "holds no token")
        expires = doc.get("expires_in")
        life = float(expires) if isinstance(expires, int | float) and expires > 0 else _MIN_TOKEN_LIFE
        return token, max(life - _TOKEN_MARGIN, 1.0)

    def _url(self, path_or_url: str) -> str:
        return path_or_url if path_or_url.startswith("https://") else self.registry.base + path_or_url


async def _bounded(resp: httpx.Response, max_bytes: int, url: str, what: str) -> AsyncIterator[bytes]:
    """The body decoded, stopping as soon as more than `max_bytes` arrived or came out of decoding."""
    try:
        decoder = BoundedDecoder(resp.headers.get("Content-Encoding"))
    except EncodingError as exc:
        raise invalid(url, what.capitalize(), f"cannot be decoded: {exc}") from None
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(url, what.capitalize(), max_bytes)
    received = decoded = 0
    try:
        async for raw in resp.aiter_raw():
            received += len(raw)
            if received > max_bytes:
                raise too_large(url, what.capitalize(), max_bytes)
            for piece in decoder.feed(raw):
                decoded += len(piece)
                if decoded > max_bytes:
                    raise too_large(url, what.capitalize(), max_bytes)
                yield piece
        decoder.finish()
    except EncodingError as exc:
        raise invalid(url, what.capitalize(), f"cannot be decoded: {exc}") from None


def _basic(auth: RepoAuth) -> str:
    pair = f"{auth.username}:{auth.password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
