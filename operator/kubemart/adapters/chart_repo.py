"""Moved: chart repositories are the helm HTTP source, `kubemart.sources.helm_http`.

Kept only until services/appinstall.py fetches charts through `kubemart.sources.Charts`; then delete it.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from kubemart.sources import cache as _cache
from kubemart.sources.credentials import RepoAuth
from kubemart.sources.helm_http import client as _client
from kubemart.sources.helm_http.client import (
    IndexFetch,
    chart_auth,
    fetch_index,
    make_client,
    resolve_chart_url,
)
from kubemart.sources.helm_http.errors import MAX_REDIRECTS, RepoError

__all__ = [
    "MAX_REDIRECTS",
    "IndexFetch",
    "RepoAuth",
    "RepoError",
    "chart_auth",
    "download_chart",
    "fetch_index",
    "make_client",
    "resolve_chart_url",
]


async def download_chart(
    client: httpx.AsyncClient,
    url: str,
    *,
    expected_digest: str | None,
    cache_dir: Path,
    auth: RepoAuth | None = None,
    max_bytes: int = 20 * 1024 * 1024,
) -> Path:
    return await _client.download_chart(
        client,
        url,
        expected_digest=expected_digest,
        cache=_cache.ChartCache(cache_dir),
        auth=auth,
        max_bytes=max_bytes,
    )
