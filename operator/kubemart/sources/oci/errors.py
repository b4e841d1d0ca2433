"""How an OCI registry's failures are reported: the helm source's reasons where they mean the same.

Transport failures (unreachable, timeouts, TLS) and the deadline come from `helm_http.errors`, so a
source says RepositoryUnreachable, TLSError or RepositoryTimeout whatever its type. What only
registries do has reasons of its own: InvalidRegistryResponse (a body that is not what the API
promises: bad JSON, a wrong media type, over the size limit) and CatalogUnavailable (no /v2/_catalog).
"""

from __future__ import annotations

import httpx

from kubemart.domain.clip import one_line
from kubemart.sources.base import SourceError
from kubemart.sources.helm_http.errors import safe_url


class OciError(SourceError):
    """A registry request failed; `reason` is CamelCase, the message names the URL (never a credential)."""


def status_error(resp: httpx.Response, what: str, *, missing: str | None = None) -> OciError:
    """The error for a non-success answer to a request for `what` ("the catalog", "the tags of x"...).

    `missing`: the reason for a 404 (ChartNotFound when `what` is a chart's tags, manifest or layer).
    """
    code = resp.status_code
    status = f"{code} {one_line(resp.reason_phrase, 40)}".strip()
    where = safe_url(str(resp.url))
    if code in (401, 403):
        return OciError(
            "RepositoryAuthFailed",
            f"{where} answered {status} for {what}; check the username and password (or token) in the "
            "source's Secret and that they grant pull access.",
            retryable=True,  # a fixed Secret is read at the next attempt
        )
    if code == 429:
        return OciError(
            "RepositoryRateLimited",
            f"{where} answered {status}; the registry is rate-limiting requests, so retry later.",
            retryable=True,
        )
    if code >= 500 or code == 408:
        return OciError(
            "RepositoryServerError",
            f"{where} answered {status}; the registry is failing, so retry later.",
            retryable=True,
        )
    if missing is not None and code in (404, 410):
        return OciError(
            missing,
            f"{where} answered {status} for {what}: the registry does not hold it; re-sync the source, or "
            "check the chart names in spec.charts.",
        )
    return OciError(
        "UnexpectedResponse", f"{where} answered {status} for {what}; check the source's url.", retryable=True
    )


def invalid(url: str, what: str, why: str) -> OciError:
    return OciError(
        "InvalidRegistryResponse",
        f"{what} from {safe_url(url)} {why}; the registry is not serving what the OCI distribution API "
        "promises, so check the registry (or the url, if it is not a registry).",
        retryable=True,
    )


def too_large(url: str, what: str, limit: int) -> OciError:
    return invalid(url, what, f"is larger than the {limit // 1024} KiB limit")
