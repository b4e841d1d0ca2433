"""(i) An OCI catalog of N apps (`make bench BENCH_ARGS="--only oci"`): first sync, unchanged re-sync and a
re-sync after one new version, with requests counted at the registry (its access log) and MarketApp
writes counted at the API server.

The registry is the tests' one (distribution's `registry` on 127.0.0.1, TLS from a test CA, htpasswd).
One chart is pushed with `helm push`; the other N-1 are written through the distribution API with
helm's own media types (N `helm push` runs would take minutes and measure helm, not the sync).
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from support.registry import PASSWORD, USERNAME, Registry

GROUP, VERSION = "kubemart.io", "v1alpha1"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def _populate(registry: Registry, path: str, apps: int) -> None:
    registry.push(path, "app0", "1.0.0")
    first = registry.manifest(f"{path}/app0", "1.0.0")
    with registry.client() as c:
        layer = c.get(f"/v2/{path}/app0/blobs/{first['layers'][0]['digest']}").content

    def one(i: int) -> None:
        config = json.dumps(
            {"apiVersion": "v2", "name": f"app{i}", "version": "1.0.0", "description": f"Generated app {i}"}
        ).encode()
        repo = f"{path}/app{i}"
        config_digest = registry.put_blob(repo, config)
        layer_digest = registry.put_blob(repo, layer)
        registry.put_manifest(
            repo,
            "1.0.0",
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": HELM_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [{"mediaType": HELM_LAYER, "digest": layer_digest, "size": len(layer)}],
            },
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(1, apps)))


def _kinds(requests: list[tuple[str, str]]) -> dict[str, int]:
    def kind(path: str) -> str:
        for part in ("_catalog", "tags/list", "manifests", "blobs"):
            if part in path:
                return part.replace("/list", "")
        return "other"

    return dict(Counter(f"{m} {kind(p)}" for m, p in requests))


def bench_oci(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    tmp: Path,
    apps: int,
    marketapp_writes: Callable[[], float],
) -> dict[str, Any]:
    registry = Registry(tmp / "oci-registry")
    path = "bench"
    name = f"bench-oci-{uuid.uuid4().hex[:6]}"
    namespace = f"bench-oci-{uuid.uuid4().hex[:6]}"
    try:
        start = time.monotonic()
        _populate(registry, path, apps)
        populate_s = time.monotonic() - start
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="oci-auth"),
                string_data={"username": USERNAME, "password": PASSWORD, "ca.crt": registry.ca_pem},
            ),
        )
        writes0, seen0 = marketapp_writes(), len(registry.requests())
        start = time.monotonic()
        custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            "marketsources",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MarketSource",
                "metadata": {"name": name},
                "spec": {
                    "type": "oci",
                    "url": registry.url(path),
                    "interval": "1h",
                    "secretRef": {"name": "oci-auth", "namespace": namespace},
                },
            },
        )
        _wait(lambda: (_status(custom, name).get("appCount") or 0) == apps, 600)
        first = time.monotonic() - start
        writes1, seen1 = marketapp_writes(), len(registry.requests())
        resync = _resync(custom, name)
        writes2, seen2 = marketapp_writes(), len(registry.requests())
        registry.push(path, "app0", "1.1.0")
        seen2b = len(registry.requests())
        changed = _resync(custom, name)
        writes3, seen3 = marketapp_writes(), len(registry.requests())
        requests = registry.requests()
        return {
            "apps": apps,
            "populate_s": round(populate_s, 1),
            "first_sync_s": round(first, 2),
            "first_sync_requests": seen1 - seen0,
            "first_sync_request_kinds": _kinds(requests[seen0:seen1]),
            "first_sync_marketapp_writes": int(writes1 - writes0),
            "unchanged_resync_s": round(resync, 3),
            "unchanged_resync_requests": seen2 - seen1,
            "unchanged_resync_request_kinds": _kinds(requests[seen1:seen2]),
            "unchanged_resync_marketapp_writes": int(writes2 - writes1),
            "new_version_resync_s": round(changed, 3),
            "new_version_resync_requests": seen3 - seen2b,
            "new_version_resync_request_kinds": _kinds(requests[seen2b:seen3]),
            "new_version_resync_marketapp_writes": int(writes3 - writes2),
        }
    finally:
        try:
            custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", name)
            core.delete_namespace(namespace)
        except client.ApiException:
            pass
        registry.close()


def _status(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    try:
        obj = custom.get_cluster_custom_object(GROUP, VERSION, "marketsources", name)
    except client.ApiException:
        return {}
    return dict(obj.get("status") or {})


def _resync(custom: client.CustomObjectsApi, name: str) -> float:
    stamp = datetime.now(UTC).isoformat()
    custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "marketsources",
        name,
        {"metadata": {"annotations": {"kubemart.io/reconcile-requested-at": stamp}}},
    )
    start = time.monotonic()
    _wait(lambda: _status(custom, name).get("lastHandledReconcileAt") == stamp, 300)
    return time.monotonic() - start


def _wait(probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout}s")
        time.sleep(0.05)


def oci_lines(i: dict[str, Any] | None, when: str) -> list[str]:
    if not i:
        return []

    def kinds(k: dict[str, int]) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in sorted(k.items())) or "none"

    return [
        f"### (i) OCI catalog of {i['apps']} apps ({i.get('when', when)})",
        "",
        '`make bench BENCH_ARGS="--only oci"`. Requests counted in the registry\'s access log (401',
        "challenges included), MarketApp writes by the API server. The registry is distribution's on",
        "127.0.0.1 with TLS and htpasswd (basic auth); the operator sends at most 8 requests at a time.",
        "",
        "| | time | registry requests | MarketApp writes |",
        "| --- | --- | --- | --- |",
        f"| first sync, to all apps listed | {i['first_sync_s']} s | {i['first_sync_requests']} ({kinds(i['first_sync_request_kinds'])}) | {i['first_sync_marketapp_writes']} |",
        f"| unchanged re-sync, request to handled | {i['unchanged_resync_s']} s | {i['unchanged_resync_requests']} ({kinds(i['unchanged_resync_request_kinds'])}) | {i['unchanged_resync_marketapp_writes']} |",
        f"| re-sync after one new version | {i['new_version_resync_s']} s | {i['new_version_resync_requests']} ({kinds(i['new_version_resync_request_kinds'])}) | {i['new_version_resync_marketapp_writes']} |",
        "",
    ]
