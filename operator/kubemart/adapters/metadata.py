"""Listing Secrets cheaply: their metadata only, or their bodies a page at a time.

A metadata-only list (PartialObjectMetadataList) says what changed without the data: lightkube has
no call for it, so the request goes through lightkube's own HTTP client (its connections,
credentials and TLS) with the Accept header the API server reads. A list of 500 stored charts is
then a few hundred bytes per object instead of each chart's archive. `stream_secrets` hands bodies
over one page at a time, so at most a page of archives is held at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from kubemart.adapters.kube import Kube, KubeError, _http_of, _to_dict, _translate

_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
_PAGE = 500


async def list_secret_metadata(kube: Kube, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The metadata of the Secrets in `namespace` with all of `labels`; raises KubeError."""
    http = _http_of(kube.client)
    if http is None:
        raise KubeError(0, "Unsupported", "this Kubernetes client cannot list metadata")
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    items: list[dict[str, Any]] = []
    cont: str | None = None
    while True:
        params = {"labelSelector": selector, "limit": str(_PAGE)} | ({"continue": cont} if cont else {})
        try:
            resp = await http.get(
                f"/api/v1/namespaces/{namespace}/secrets", params=params, headers={"Accept": _ACCEPT}
            )
        except httpx2.HTTPError as exc:
            raise KubeError(0, "Unreachable", f"the Kubernetes API could not be reached: {exc}") from exc
        body = _json(resp)
        if resp.status_code != 200:
            raise KubeError(
                resp.status_code,
                str(body.get("reason") or resp.reason_phrase or "Unknown"),
                str(body.get("message") or f"the API server answered HTTP {resp.status_code}"),
            )
        items += [i.get("metadata") or {} for i in body.get("items") or [] if isinstance(i, dict)]
        cont = (body.get("metadata") or {}).get("continue")
        if not cont:
            return items


def _json(resp: httpx2.Response) -> dict[str, Any]:
    try:
        doc = json.loads(resp.content)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


async def stream_secrets(
    kube: Kube, namespace: str, labels: Mapping[str, str], *, page: int
) -> AsyncIterator[dict[str, Any]]:
    """The Secrets in `namespace` with all of `labels`, fetched `page` at a time; raises KubeError."""
    api: Any = kube.client
    try:
        async for obj in api.list(Secret, namespace=namespace, labels=dict(labels), chunk_size=page):
            yield _to_dict(obj)
    except (ApiError, httpx2.HTTPError) as exc:
        raise _translate(exc) from exc
