"""A chart's provenance file (`<chart URL>.prov`), fetched like the chart: same client, bounds and credentials."""

from __future__ import annotations

import asyncio

import httpx

from kubemart.sources.credentials import RepoAuth
from kubemart.sources.helm_http.client import _bounded_body, _get, check_url
from kubemart.sources.helm_http.errors import (
    RepoError,
    deadline_error,
    mib,
    safe_url,
    status_error,
    transport_error,
)


def provenance_url(chart_url: str) -> str:
    """Pure: where helm looks for a chart's provenance: the chart URL plus ".prov" (before any query)."""
    path, sep, query = chart_url.partition("?")
    return f"{path}.prov{sep}{query}"


async def download_provenance(
    client: httpx.AsyncClient, chart_url: str, *, auth: RepoAuth | None, max_bytes: int, deadline: float
) -> bytes | None:
    """The .prov of the chart at `chart_url`; None when the server has none (404 or 410). Raises RepoError."""
    url = check_url(provenance_url(chart_url), "chart")

    def too_large() -> RepoError:
        return RepoError(
            "ChartTooLarge",
            f"The provenance file {safe_url(url)} is larger than the {mib(max_bytes)} limit; it should be a few KiB.",
        )

    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(deadline), _get(client, url, headers={}, auth=auth) as resp:
            if resp.status_code in (404, 410):
                return None
            if not resp.is_success:
                raise status_error(resp, "chart")
            async for chunk in _bounded_body(resp, max_bytes, too_large, "chart"):
                chunks.append(chunk)
    except TimeoutError:
        raise deadline_error(url, "chart", deadline) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise transport_error(exc, url, "chart") from exc
    return b"".join(chunks)
