"""(k) A git source of 500 apps (chart directories and tomo app definitions, half each) served by git's
own http-backend on 127.0.0.1 with basic auth: first sync, an unchanged re-sync and a one-app commit,
with requests counted at the git server and MarketApp writes counted by the API server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from support.gitserver import GitRepo, GitServer

GROUP, VERSION = "kubemart.io", "v1alpha1"
CHART = """apiVersion: v2
name: chart-{i:04d}
description: Generated chart directory number {i}
version: {version}
appVersion: "1.0"
annotations:
  kubemart.io/categories: category-{group}
"""
TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{{{ .Release.Name }}}}
data:
  n: "{i}"
"""
DEFINITION = """id: def-{i:04d}
name: Definition {i}
description: Generated app definition number {i}
version: "1.{i}.0"
category: category-{group}
tags: [generated]
docker:
  image: registry.invalid/app-{i}:1.0
  ports:
    - container: 8080
  environment:
    - name: TZ
      default: UTC
"""


def fill(repo: GitRepo, apps: int) -> None:
    for i in range(apps // 2):
        repo.write(f"charts/chart-{i:04d}/Chart.yaml", CHART.format(i=i, version="1.0.0", group=i % 20))
        repo.write(f"charts/chart-{i:04d}/templates/cm.yaml", TEMPLATE.format(i=i))
    for i in range(apps - apps // 2):
        repo.write(f"apps/category-{i % 20}/def-{i:04d}.yaml", DEFINITION.format(i=i, group=i % 20))


def bench_git(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    tmp: Path,
    apps: int,
    *,
    writes: Callable[[], float],
    peak_rss_mib: Callable[[], float],
) -> dict[str, Any]:
    (tmp / "git").mkdir(exist_ok=True)
    server = GitServer(tmp / "git")
    server.require_basic_auth("bench", "bench-pass")
    repo = server.repo("catalog")
    fill(repo, apps)
    repo.commit("catalog")
    name = f"bench-git-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            string_data={"username": "bench", "password": "bench-pass"},
        ),
    )

    def get() -> dict[str, Any]:
        return custom.get_cluster_custom_object(GROUP, VERSION, "marketsources", name)  # type: ignore[no-any-return]

    def resync() -> None:
        stamp = datetime.now(UTC).isoformat()
        patch = {"metadata": {"annotations": {"kubemart.io/reconcile-requested-at": stamp}}}
        custom.patch_cluster_custom_object(GROUP, VERSION, "marketsources", name, patch)
        wait(lambda: (get().get("status") or {}).get("lastHandledReconcileAt") == stamp)

    try:
        w0, r0 = writes(), server.requests.count()
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
                    "type": "git",
                    "url": server.url("catalog"),
                    "interval": "1h",
                    "secretRef": {"name": name, "namespace": "default"},
                },
            },
        )
        wait(lambda: (get().get("status") or {}).get("appCount") == apps and ready(get()))
        first = time.monotonic() - start
        w1, r1 = writes(), server.requests.count()
        start = time.monotonic()
        resync()
        unchanged = time.monotonic() - start
        w2, r2 = writes(), server.requests.count()
        repo.write("charts/chart-0000/Chart.yaml", CHART.format(i=0, version="1.0.1", group=0))
        commit = repo.commit("one app changed")
        start = time.monotonic()
        resync()
        wait(lambda: (get().get("status") or {}).get("revision") == commit)
        changed = time.monotonic() - start
        w3, r3 = writes(), server.requests.count()
        return {
            "apps": apps,
            "first_sync_s": round(first, 2),
            "first_sync_git_requests": r1 - r0,
            "first_sync_marketapp_writes": int(w1 - w0),
            "unchanged_resync_s": round(unchanged, 3),
            "unchanged_resync_git_requests": r2 - r1,
            "unchanged_resync_marketapp_writes": int(w2 - w1),
            "one_app_commit_s": round(changed, 2),
            "one_app_commit_git_requests": r3 - r2,
            "one_app_commit_marketapp_writes": int(w3 - w2),
            "operator_peak_rss_mib": round(peak_rss_mib(), 1),
        }
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", name)
        core.delete_namespaced_secret(name, "default")
        server.close()


def ready(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    return st.get("observedGeneration") == obj["metadata"].get("generation") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or []
    )


def wait(probe: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    raise TimeoutError(f"not reached within {timeout}s")


def git_lines(g: dict[str, Any] | None, when: str) -> list[str]:
    if not g:
        return []
    return [
        f"### (k) Git source of {g['apps']} apps, chart directories and app definitions ({g.get('when', when)})",
        "",
        "`make bench BENCH_ARGS='--only git'`: git's http-backend on 127.0.0.1 with basic auth; requests "
        "counted at that server, MarketApp writes by the API server. Times vary with the load of this shared "
        "machine (the first sync took 4.7 to 16.4 s over four runs); the counts do not.",
        "",
        "| | time | git HTTP requests | MarketApp writes |",
        "| --- | --- | --- | --- |",
        f"| first sync, to Ready | {g['first_sync_s']} s | {g['first_sync_git_requests']} | "
        f"{g['first_sync_marketapp_writes']} |",
        f"| unchanged re-sync (same commit), request to handled | {g['unchanged_resync_s']} s | "
        f"{g['unchanged_resync_git_requests']} | {g['unchanged_resync_marketapp_writes']} |",
        f"| a commit changing one app | {g['one_app_commit_s']} s | {g['one_app_commit_git_requests']} | "
        f"{g['one_app_commit_marketapp_writes']} |",
        f"| operator peak RSS (VmHWM), whole run | {g['operator_peak_rss_mib']} MiB | | |",
        "",
    ]
