"""(j) The upload source with many uploaded charts: first sync, unchanged re-sync, one new upload.

Every figure of requests and writes is the API server's own count (`apiserver_request_total`), taken
while the operator is the only client touching Secrets and MarketApps. The charts are stored as
`kubectl market upload` stores them (domain.upload_storage), written by the bench with admin rights.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from kubemart.domain.chart_archive import inspect
from kubemart.domain.upload_storage import secret_body

GROUP, VERSION = "kubemart.io", "v1alpha1"
_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def chart_archive(name: str, version: str) -> bytes:
    """A small chart like the ones people upload: Chart.yaml, values and one template."""
    files = {
        f"{name}/Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: {version}\ndescription: Uploaded {name}\n",
        f"{name}/values.yaml": "replicaCount: 1\n",
        f"{name}/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\n",
    }
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def counts(metrics_text: str) -> dict[tuple[str, str], float]:
    """(resource, verb) -> requests served, from the API server's metrics."""
    out: dict[tuple[str, str], float] = {}
    for line in metrics_text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
        key = (labels.get("resource", ""), labels.get("verb", ""))
        out[key] = out.get(key, 0.0) + float(m["value"])
    return out


def delta(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], resource: str
) -> dict[str, int]:
    verbs = {v for r, v in after if r == resource}
    return {v: int(after.get((resource, v), 0) - before.get((resource, v), 0)) for v in sorted(verbs)}


def _nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


def bench_uploads(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    metrics: Callable[[], str],
    charts: int,
) -> dict[str, Any]:
    ns = f"bench-up-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    size = 0
    for i in range(charts):
        data = chart_archive(f"app-{i:04d}", "1.0.0")
        size += len(data)
        core.create_namespaced_secret(ns, secret_body(inspect(data), data, ns))
    name = f"bench-up-{uuid.uuid4().hex[:6]}"

    def source() -> dict[str, Any]:
        return custom.get_cluster_custom_object(GROUP, VERSION, "marketsources", name)

    def app_count() -> int:
        return int((source().get("status") or {}).get("appCount") or 0)

    before = counts(metrics())
    start = time.monotonic()
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "marketsources",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MarketSource",
            "metadata": {"name": name},
            "spec": {"type": "upload", "upload": {"namespace": ns}, "interval": "1h"},
        },
    )
    _wait(lambda: app_count() == charts, 600)
    first = time.monotonic() - start
    after_first = counts(metrics())

    stamp = datetime.now(UTC).isoformat()
    custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "marketsources",
        name,
        {"metadata": {"annotations": {"kubemart.io/reconcile-requested-at": stamp}}},
    )
    start = time.monotonic()
    _wait(lambda: (source().get("status") or {}).get("lastHandledReconcileAt") == stamp, 120)
    resync = time.monotonic() - start
    after_resync = counts(metrics())

    data = chart_archive("app-new", "1.0.0")
    start = time.monotonic()
    core.create_namespaced_secret(ns, secret_body(inspect(data), data, ns))
    _wait(lambda: app_count() == charts + 1, 120)
    one_new = time.monotonic() - start
    time.sleep(2)  # the wake and the status write settle before counting
    after_new = counts(metrics())

    result = {
        "charts": charts,
        "stored_kib": round(size / 1024, 1),
        "first_sync_s": round(first, 2),
        "first_sync_secret_requests": _nonzero(delta(before, after_first, "secrets")),
        "first_sync_marketapp_requests": _nonzero(delta(before, after_first, "marketapps")),
        "unchanged_resync_s": round(resync, 3),
        "unchanged_resync_secret_requests": _nonzero(delta(after_first, after_resync, "secrets")),
        "unchanged_resync_marketapp_requests": _nonzero(delta(after_first, after_resync, "marketapps")),
        "one_upload_listed_s": round(one_new, 3),
        "one_upload_secret_requests": _nonzero(delta(after_resync, after_new, "secrets")),
        "one_upload_marketapp_requests": _nonzero(delta(after_resync, after_new, "marketapps")),
    }
    custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", name)
    core.delete_namespace(ns)
    return result


def _wait(probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    raise TimeoutError(f"not reached within {timeout}s")


def _fmt(d: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in d.items()) or "0"


def uploads_lines(r: dict[str, Any] | None, when: str) -> list[str]:
    if not r:
        return []
    return [
        f"### (j) Upload source with {r['charts']} uploaded charts, {r['stored_kib']} KiB stored ({r.get('when', when)})",
        "",
        "| | time | Secret requests | MarketApp requests |",
        "| --- | --- | --- | --- |",
        f"| first sync, source created to all listed | {r['first_sync_s']} s | {_fmt(r['first_sync_secret_requests'])} | {_fmt(r['first_sync_marketapp_requests'])} |",
        f"| unchanged re-sync, request to handled | {r['unchanged_resync_s']} s | {_fmt(r['unchanged_resync_secret_requests'])} | {_fmt(r['unchanged_resync_marketapp_requests'])} |",
        f"| one more upload, Secret created to listed (the watch wakes the source) | {r['one_upload_listed_s']} s | {_fmt(r['one_upload_secret_requests'])} (the bench's own POST included) | {_fmt(r['one_upload_marketapp_requests'])} |",
        "",
    ]
