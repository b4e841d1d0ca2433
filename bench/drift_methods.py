"""(h) Drift detection by server-side apply dry-run against the hand-written field diff.

Real charts of ../shared/realcharts (kube-prometheus-stack: 115 objects; argo-cd: 55, two of them
CRDs of 190 and 340 KiB) are installed with raw helm, and the operator's own `Corrector.read_live`
checks them in-process, as the app's reconcile does, in three ways:

- fields: GET each object and compare the fields the manifest sets (the fallback);
- dry-run, first check: GET each object and server-side apply dry-run it (what a check costs after
  anything changed);
- dry-run, steady: the same, with the objects found in sync at their current resourceVersion
  skipped (what every later check of an untouched app costs).

Per check: wall time (median of runs) and API requests (the Corrector's own count, and the API
server's `apiserver_request_total` difference, which includes the cluster's own controllers). Then a
hand edit (a ConfigMap's data) must be found by every method.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kubemart.adapters.helm import Helm
from kubemart.adapters.kube import Kube
from kubemart.models.appinstall import DriftMode
from kubemart.services.correction import Corrector
from support.realcharts import provide_capacity, real_charts, remove_capacity

CHARTS = ("kube-prometheus-stack", "argo-cd")


def bench_drift_methods(
    *, bin_dir: Path, env: dict[str, str], runs: int, apiserver_requests: Callable[[], float]
) -> dict[str, Any]:
    corpus = {c.app: c for c in real_charts()}
    if not all(a in corpus for a in CHARTS):
        return {"skipped": "the real-chart corpus (shared/realcharts) is not on this machine"}
    k8s = client.ApiClient()
    core = client.CoreV1Api(k8s)
    suffix = uuid.uuid4().hex[:5]
    volumes = provide_capacity(k8s, volumes=0, run=suffix)
    out: dict[str, Any] = {"runs": runs, "charts": {}}
    installed: list[tuple[str, str]] = []
    try:
        for app in CHARTS:
            chart, ns = corpus[app], f"bench-f-{app}-{suffix}"
            values = Path(f"/tmp/{ns}-values.yaml")
            values.write_text(yaml.safe_dump(chart.values))
            subprocess.run(
                [str(bin_dir / "helm"), "install", chart.release, str(chart.archive), "-n", ns,
                 "--create-namespace", "-f", str(values), "--wait", "--timeout", "5m"],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            installed.append((chart.release, ns))
            out["charts"][app] = asyncio.run(
                _measure(chart.release, ns, runs, bin_dir, apiserver_requests, core)
            )
            print(app, out["charts"][app], flush=True)
    finally:
        for release, ns in installed:
            subprocess.run(
                [str(bin_dir / "helm"), "uninstall", release, "-n", ns, "--wait"],
                env=env,
                capture_output=True,
            )
            core.delete_namespace(ns)
        crds = [c for c in _crd_names(env, bin_dir) if c.endswith(("monitoring.coreos.com", "argoproj.io"))]
        if crds:
            subprocess.run([str(bin_dir / "kubectl"), "delete", "crd", *crds, "--wait=false"], env=env)
        remove_capacity(k8s, volumes)
    return out


def _crd_names(env: dict[str, str], bin_dir: Path) -> list[str]:
    got = subprocess.run(
        [str(bin_dir / "kubectl"), "get", "crd", "-o", "name"], env=env, capture_output=True, text=True
    )
    return [line.split("/", 1)[1] for line in got.stdout.split()]


async def _measure(
    release: str,
    namespace: str,
    runs: int,
    bin_dir: Path,
    apiserver_requests: Callable[[], float],
    core: client.CoreV1Api,
) -> dict[str, Any]:
    kube = Kube.from_environment()
    helm = Helm(kube, executable=str(bin_dir / "helm"), max_concurrent=4)
    try:
        revision = (await helm.history(release, namespace)).current.revision  # type: ignore[union-attr]
        objects = len(await helm.manifest(release, namespace, revision))

        async def check(corrector: Corrector) -> tuple[float, int, float, int]:
            before, started = await asyncio.to_thread(apiserver_requests), time.perf_counter()
            live = await corrector.read_live(
                release=release, namespace=namespace, revision=revision, mode=DriftMode.ENABLED, stopped=False
            )
            elapsed = time.perf_counter() - started
            seen = await asyncio.to_thread(apiserver_requests) - before
            return elapsed, live.requests, seen, len(live.drift)

        await check(Corrector(kube, helm))  # discovery and the manifest are cached from here on
        fields = [await check(Corrector(kube, helm, by_dry_run=False)) for _ in range(runs)]
        cold = [await check(Corrector(kube, helm)) for _ in range(runs)]
        steady_corrector = Corrector(kube, helm)
        await check(steady_corrector)
        steady = [await check(steady_corrector) for _ in range(runs)]
        assert not [r for r in fields + cold + steady if r[3]], "an untouched release shows no drift"

        # A hand edit of a value the chart sets: every method sees it.
        cm = next(
            o
            for o in await helm.manifest(release, namespace, revision)
            if o["kind"] == "ConfigMap" and o.get("data")
        )
        key = next(iter(cm["data"]))
        await asyncio.to_thread(
            core.patch_namespaced_config_map,
            cm["metadata"]["name"],
            namespace,
            {"data": {key: "edited by hand"}},
        )
        found = {
            "fields": (await check(Corrector(kube, helm, by_dry_run=False)))[3],
            "dry-run": (await check(steady_corrector))[3],
        }
        return {
            "objects": objects,
            "fields_s": _median(fields, 0),
            "fields_requests": fields[0][1],
            "dry_run_first_s": _median(cold, 0),
            "dry_run_first_requests": cold[0][1],
            "dry_run_steady_s": _median(steady, 0),
            "dry_run_steady_requests": steady[0][1],
            "apiserver_requests": {
                "fields": _median(fields, 2),
                "dry_run_first": _median(cold, 2),
                "dry_run_steady": _median(steady, 2),
            },
            "hand_edit_found": found,
        }
    finally:
        await kube.close()


def _median(rows: list[tuple[float, int, float, int]], column: int) -> float:
    return round(statistics.median(r[column] for r in rows), 3)


def report(f: dict[str, Any] | None, when: str) -> list[str]:
    """The section for docs/benchmarks.md."""
    if not f:
        return []
    if "skipped" in f:
        return [f"### (h) Drift detection methods ({when})", "", f"Skipped: {f['skipped']}.", ""]
    lines = [
        f"### (h) Drift detection methods, one check of an untouched release ({f.get('when', when)})",
        "",
        f"Median of {f['runs']} checks by `Corrector.read_live`; requests as counted by the check "
        "(and by the API server, all clients).",
        "",
        "| chart (objects) | method | time | API requests |",
        "| --- | --- | --- | --- |",
    ]
    for app, m in f["charts"].items():
        a = m["apiserver_requests"]
        lines += [
            f"| {app} ({m['objects']}) | field diff (fallback) | {m['fields_s']} s | {m['fields_requests']} ({a['fields']:.0f}) |",
            f"| | dry-run, first check | {m['dry_run_first_s']} s | {m['dry_run_first_requests']} ({a['dry_run_first']:.0f}) |",
            f"| | dry-run, steady (in-sync objects skipped) | {m['dry_run_steady_s']} s | {m['dry_run_steady_requests']} ({a['dry_run_steady']:.0f}) |",
            f"| | a hand-edited ConfigMap found by | fields: {m['hand_edit_found']['fields']} drift, dry-run: {m['hand_edit_found']['dry-run']} drift | |",
        ]
    return [*lines, ""]
