"""Kubemart benchmarks on the local cluster (`make bench`): the operator against raw helm.

(a) one AppInstall, apply to Ready, against `helm upgrade --install --wait` of the same chart;
(b) 50 AppInstalls applied at once, against 50 direct helm installs run 4 at a time;
(c) a catalog of 5,000 generated charts: first sync, an unchanged re-sync, API writes, peak RSS;
(d) drift repair time and the cost of idling with 200 apps;
(e) leader hand-over with two replicas: SIGTERM (the Lease is released) against SIGKILL (it must expire);
(f) attacks: every case of issue #9 replayed against a fresh operator each, its peak RSS and loop lag
    (bench/attacks.py);
(g) hostile catalogs: bombs, a trickling server, an index at the limits (bench/hostile_catalogs.py);
(h) drift detection by server-side apply dry-run against the field diff, on real charts (drift_methods.py);
(i) an OCI catalog of 500 apps in a real registry: requests at the registry, writes (oci_catalog.py).
(j) an upload source with 500 uploaded charts: first sync, unchanged re-sync, one new upload (uploads.py);
(k) a git source of 500 apps: first sync, unchanged re-sync, one-app commit (git_source.py).
(l) install counts: 1,000 AppInstalls churning, MarketApp status writes against events (install_counts.py).

Results go to bench/results/latest.json and, as a table, into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.server
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from attack_kit import Env  # noqa: E402 - bench/ is on the path: the script's own directory
from attacks import attacks_report, bench_attacks  # noqa: E402
from drift_methods import bench_drift_methods  # noqa: E402
from drift_methods import report as drift_methods_report  # noqa: E402
from git_source import bench_git, git_lines  # noqa: E402
from hostile_catalogs import bench_hostile, hostile_lines  # noqa: E402
from install_counts import bench_install_counts, counts_lines  # noqa: E402
from oci_catalog import bench_oci, oci_lines  # noqa: E402
from support.apiserver import mutating_requests  # noqa: E402 - shared with the test suite
from support.generated import generated_index  # noqa: E402
from support.repo import ChartRepo  # noqa: E402
from uploads import bench_uploads, uploads_lines  # noqa: E402

BIN = ROOT / "bin"
KUBECONFIG = os.environ.get("KUBECONFIG", str(ROOT / ".cluster" / "kubeconfig"))
GROUP, VERSION = "kubemart.io", "v1alpha1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt: str, *args: Any) -> None:
        pass


def serve(directory: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def env() -> dict[str, str]:
    return dict(os.environ) | {"KUBECONFIG": KUBECONFIG, "PATH": f"{BIN}:{os.environ['PATH']}"}


def kubectl(*args: str) -> str:
    return subprocess.run(
        [str(BIN / "kubectl"), *args], env=env(), check=True, capture_output=True, text=True
    ).stdout


class Operator:
    def __init__(self, log: Path, args: tuple[str, ...] = ()) -> None:
        self.health = free_port()
        self.metrics = free_port()
        self.webhook = free_port()
        self.log = log
        exe = Path(sys.executable).with_name("kubemart")
        extra = {
            "KUBEMART_METRICS_PORT": str(self.metrics),
            "KUBEMART_WEBHOOK_PORT": str(self.webhook),
            "KUBEMART_CHART_CACHE_DIR": tempfile.mkdtemp(),
        }
        with log.open("ab") as f:
            self.proc = subprocess.Popen(
                [str(exe), "run", "--liveness", f"http://127.0.0.1:{self.health}/healthz", *args],
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env() | extra,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.health}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"operator did not start; see {log}")

    def peak_rss_mib(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]

    def rss_mib(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metric(self, name: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics}/metrics", timeout=5).text
        return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=60)

    def leading(self) -> bool:
        # kopf's startup handler logs "kubemart operator <version> started" once this replica leads.
        return "kubemart operator" in self.log.read_text(errors="replace")

    def standing_by(self) -> bool:
        return "waiting to lead" in self.log.read_text(errors="replace")


def bench_handover(core: client.CoreV1Api, tmp: Path, runs: int) -> dict[str, Any]:
    """Two `kubemart run --leader-elect` replicas: time from stopping the leader to the other leading."""
    ns = new_namespace(core, "bench-h")
    lease = ("--leader-elect", "--leader-election-namespace", ns, "--leader-election-name", "bench")
    count = 0

    def replica() -> Operator:
        nonlocal count
        count += 1
        return Operator(tmp / f"replica-{count}.log", lease)

    leader = replica()
    wait_until(leader.leading, 60)
    times: dict[str, list[float]] = {"sigterm": [], "sigkill": []}
    try:
        for signal_name in ["sigterm"] * runs + ["sigkill"]:
            standby = replica()
            wait_until(standby.standing_by, 60)
            start = time.monotonic()
            if signal_name == "sigterm":
                leader.stop()  # graceful: kopf stops, then the Lease is released
            else:
                leader.kill()
            wait_until(standby.leading, 60, interval=0.02)
            times[signal_name].append(time.monotonic() - start)
            leader = standby
    finally:
        leader.stop()
        core.delete_namespace(ns)
    term, kill = statistics.median(times["sigterm"]), statistics.median(times["sigkill"])
    return {
        "runs": runs,
        "sigterm_s": [round(t, 2) for t in times["sigterm"]],
        "sigterm_median_s": round(term, 2),
        "sigkill_s": round(kill, 2),
        "ratio": round(term / kill, 3),
    }


def apiserver_writes(resource: str) -> float:
    """Mutating requests the API server has served for `resource`, from its own metrics."""
    return mutating_requests(kubectl("get", "--raw", "/metrics"), resource)


def wait_until(probe: Any, timeout: float, interval: float = 0.05) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe():
            return time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"not reached within {timeout}s")


def is_ready(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    return st.get("observedGeneration") == obj["metadata"].get("generation") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or []
    )


def make_repo(tmp: Path) -> tuple[str, http.server.ThreadingHTTPServer, Path]:
    repo = tmp / "repo"
    repo.mkdir()
    subprocess.run(
        [str(BIN / "helm"), "package", str(ROOT / "examples/catalog/hello-web"), "-d", str(repo)],
        check=True,
        capture_output=True,
    )
    url, server = serve(repo)
    subprocess.run(
        [str(BIN / "helm"), "repo", "index", str(repo), "--url", url], check=True, capture_output=True
    )
    return url, server, next(repo.glob("*.tgz"))


def create_source(custom: client.CustomObjectsApi, name: str, url: str) -> None:
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "marketsources",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MarketSource",
            "metadata": {"name": name},
            "spec": {"url": url, "interval": "1h"},
        },
    )
    wait_until(lambda: is_ready(custom.get_cluster_custom_object(GROUP, VERSION, "marketsources", name)), 120)


def new_namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_until(lambda: _has_sa(core, name), 30)
    return name


def _has_sa(core: client.CoreV1Api, ns: str) -> bool:
    try:
        core.read_namespaced_service_account("default", ns)
        return True
    except client.ApiException:
        return False


def appinstall(name: str, source: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AppInstall",
        "metadata": {"name": name},
        "spec": {"source": source, "app": "hello-web"},
    }


def _ready_app(custom: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    return is_ready(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "appinstalls", name))


def helm_install(release: str, chart: Path, namespace: str) -> float:
    start = time.monotonic()
    subprocess.run(
        [
            str(BIN / "helm"),
            "upgrade",
            "--install",
            release,
            str(chart),
            "-n",
            namespace,
            "--wait",
            "--timeout",
            "5m",
        ],
        env=env(),
        check=True,
        capture_output=True,
    )
    return time.monotonic() - start


def bench_single(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, source: str, chart: Path, runs: int
) -> dict[str, Any]:
    op_times, helm_times = [], []
    for i in range(runs):
        ns = new_namespace(core, "bench-a")
        helm_times.append(helm_install(f"raw-{i}", chart, ns))
        start = time.monotonic()
        name = f"app-{i}"
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "appinstalls", appinstall(name, source))
        wait_until(partial(_ready_app, custom, ns, name), 300)
        op_times.append(time.monotonic() - start)
        core.delete_namespace(ns)
    op, raw = statistics.median(op_times), statistics.median(helm_times)
    return {
        "runs": runs,
        "operator_median_s": round(op, 3),
        "helm_median_s": round(raw, 3),
        "ratio": round(op / raw, 3),
        "operator_s": [round(t, 3) for t in op_times],
        "helm_s": [round(t, 3) for t in helm_times],
    }


def bench_batch(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, source: str, chart: Path, count: int
) -> dict[str, Any]:
    ns = new_namespace(core, "bench-b-helm")
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: helm_install(f"raw-{i}", chart, ns), range(count)))
    raw = time.monotonic() - start
    core.delete_namespace(ns)

    ns = new_namespace(core, "bench-b-op")
    start = time.monotonic()
    for i in range(count):
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, "appinstalls", appinstall(f"app-{i}", source)
        )

    def all_ready() -> bool:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "appinstalls")["items"]
        return len(items) == count and all(is_ready(o) for o in items)

    wait_until(all_ready, 900, interval=0.25)
    op = time.monotonic() - start
    core.delete_namespace(ns)
    return {
        "count": count,
        "operator_s": round(op, 2),
        "helm_4_at_a_time_s": round(raw, 2),
        "ratio": round(op / raw, 3),
    }


def bench_catalog(
    custom: client.CustomObjectsApi, operator: Operator, tmp: Path, charts: int
) -> dict[str, Any]:
    repo = tmp / f"big-{charts}"
    repo.mkdir()
    url, server = serve(repo)
    (repo / "index.yaml").write_bytes(generated_index(charts, 3, url))
    name = f"bench-{uuid.uuid4().hex[:6]}"
    writes0 = apiserver_writes("marketapps")
    start = time.monotonic()
    create_source(custom, name, url)
    first = time.monotonic() - start
    writes1 = apiserver_writes("marketapps")
    stamp = datetime.now(UTC).isoformat()
    custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "marketsources",
        name,
        {"metadata": {"annotations": {"kubemart.io/reconcile-requested-at": stamp}}},
    )
    start = time.monotonic()
    wait_until(
        lambda: (
            (custom.get_cluster_custom_object(GROUP, VERSION, "marketsources", name).get("status") or {}).get(
                "lastHandledReconcileAt"
            )
            == stamp
        ),
        120,
    )
    resync = time.monotonic() - start
    writes2 = apiserver_writes("marketapps")
    result = {
        "charts": charts,
        "index_mib": round((repo / "index.yaml").stat().st_size / 2**20, 1),
        "first_sync_s": round(first, 2),
        "first_sync_marketapp_writes": int(writes1 - writes0),
        "unchanged_resync_s": round(resync, 3),
        "unchanged_resync_marketapp_writes": int(writes2 - writes1),
        "operator_peak_rss_mib": round(operator.peak_rss_mib(), 1),
    }
    custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", name)
    server.shutdown()
    return result


def bench_drift(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    operator: Operator,
    source: str,
    apps: int,
    idle: float,
) -> dict[str, Any]:
    """Drift repair time, then `apps` installed apps left alone for `idle` seconds."""
    apps_api = client.AppsV1Api()
    ns = new_namespace(core, "bench-d")
    start = time.monotonic()
    for i in range(apps):
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, "appinstalls", appinstall(f"app-{i}", source)
        )

    def all_ready() -> bool:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "appinstalls")["items"]
        return len(items) == apps and all(is_ready(o) for o in items)

    wait_until(all_ready, 1800, interval=1)
    install_s = time.monotonic() - start

    repairs = []
    for i in range(5):
        name = f"app-{i}"
        uid = apps_api.read_namespaced_deployment(name, ns).metadata.uid
        apps_api.delete_namespaced_deployment(name, ns)
        repairs.append(wait_until(partial(_recreated, apps_api, ns, name, uid), 60, interval=0.02))

    time.sleep(5)  # let the repairs' own events settle before the quiet window starts
    cpu0, helm0 = operator.cpu_seconds(), operator.metric("kubemart_helm_subprocesses_total")
    req0 = apiserver_requests()
    time.sleep(idle)  # the measurement: nothing changes, the operator is watched
    cpu1, helm1 = operator.cpu_seconds(), operator.metric("kubemart_helm_subprocesses_total")
    req1 = apiserver_requests()
    core.delete_namespace(ns)
    return {
        "apps": apps,
        "install_all_s": round(install_s, 1),
        "drift_repair_s": [round(r, 2) for r in repairs],
        "drift_repair_median_s": round(statistics.median(repairs), 2),
        "idle_s": idle,
        "idle_cpu_s": round(cpu1 - cpu0, 2),
        "idle_cpu_percent_of_core": round(100 * (cpu1 - cpu0) / idle, 3),
        "idle_helm_subprocesses": int(helm1 - helm0),
        "idle_api_requests": int(req1 - req0),
        "operator_rss_mib": round(operator.rss_mib(), 1),
    }


def _recreated(apps_api: client.AppsV1Api, namespace: str, name: str, uid: str) -> bool:
    try:
        return bool(apps_api.read_namespaced_deployment(name, namespace).metadata.uid != uid)
    except client.ApiException:
        return False


def apiserver_requests() -> float:
    """All requests the API server served, from its own counter (the operator is the only busy client)."""
    total = 0.0
    for line in kubectl("get", "--raw", "/metrics").splitlines():
        if line.startswith("apiserver_request_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def write_report(results: dict[str, Any], command: str) -> None:
    a, b, c, d = results.get("single"), results.get("batch"), results.get("catalog"), results.get("drift")
    e = results.get("handover")
    lines = [
        "## Latest results",
        "",
        f"Measured on this 2-core machine with `{command}` (local kwok cluster, {results['helm']});",
        "each section says when it was last run.",
        "",
    ]
    if a:
        lines += [
            f"### (a) One app: apply to Ready ({a.get('when', results['when'])})",
            "",
            "| | median of runs | per run (s) |",
            "| --- | --- | --- |",
            f"| `helm upgrade --install --wait` (baseline) | {a['helm_median_s']} s | {a['helm_s']} |",
            f"| AppInstall applied until Ready | {a['operator_median_s']} s | {a['operator_s']} |",
            f"| **ratio** | **{a['ratio']}** (target ≤ 1.10) | |",
            "",
        ]
    if b:
        lines += [
            f"### (b) {b['count']} apps at once ({b.get('when', results['when'])})",
            "",
            "| | time to all Ready |",
            "| --- | --- |",
            f"| {b['count']} direct helm installs, 4 at a time (baseline) | {b['helm_4_at_a_time_s']} s |",
            f"| {b['count']} AppInstalls applied at once | {b['operator_s']} s |",
            f"| **ratio** | **{b['ratio']}** (target ≤ 1.0) |",
            "",
        ]
    if c:
        lines += [
            f"### (c) Catalog of {c['charts']} charts, {c['index_mib']} MiB index ({c.get('when', results['when'])})",
            "",
            "| | |",
            "| --- | --- |",
            f"| first sync, to Ready | {c['first_sync_s']} s |",
            f"| MarketApp writes on first sync (API server's own count) | {c['first_sync_marketapp_writes']} |",
            f"| unchanged re-sync, request to handled | {c['unchanged_resync_s']} s |",
            f"| MarketApp writes on unchanged re-sync | {c['unchanged_resync_marketapp_writes']} |",
            f"| operator peak RSS (VmHWM) | {c['operator_peak_rss_mib']} MiB |",
            "",
        ]
    if d:
        lines += [
            f"### (d) Status correction with {d['apps']} apps ({d.get('when', results['when'])})",
            "",
            "| | |",
            "| --- | --- |",
            f"| install all {d['apps']} apps | {d['install_all_s']} s |",
            f"| deleted Deployment back (median of 5) | {d['drift_repair_median_s']} s, each: {d['drift_repair_s']} (target < 5 s) |",
            f"| {int(d['idle_s'])} s idle: operator CPU | {d['idle_cpu_s']} s = {d['idle_cpu_percent_of_core']} % of a core (target < 1 %) |",
            f"| {int(d['idle_s'])} s idle: helm subprocesses | {d['idle_helm_subprocesses']} (target 0) |",
            f"| {int(d['idle_s'])} s idle: API requests (all clients, API server's count) | {d['idle_api_requests']} |",
            f"| operator RSS with {d['apps']} apps | {d['operator_rss_mib']} MiB |",
            "",
        ]
    if e:
        lines += [
            f"### (e) Leader hand-over, two replicas ({e.get('when', results['when'])})",
            "",
            "| | stop to the other replica leading |",
            "| --- | --- |",
            f"| SIGKILL: the Lease must expire (baseline: client-go's 15 s duration) | {e['sigkill_s']} s |",
            f"| SIGTERM: kopf stops, the Lease is released (median of {e['runs']}) | {e['sigterm_median_s']} s, each: {e['sigterm_s']} |",
            f"| **ratio** | **{e['ratio']}** |",
            "",
        ]
    f = results.get("attacks")
    if f:
        lines += attacks_report(f, results["when"])
    lines += hostile_lines(results.get("hostile"), results["when"])
    lines += drift_methods_report(results.get("methods"), results["when"])
    lines += oci_lines(results.get("oci"), results["when"])
    lines += uploads_lines(results.get("uploads"), results["when"])
    lines += git_lines(results.get("git"), results["when"])
    lines += counts_lines(results.get("counts"), results["when"])
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    marker = "<!-- results: written by bench/bench.py -->"
    head = text.split(marker)[0].rstrip() + "\n\n" if marker in text else text.rstrip() + "\n\n"
    kept = _sections(text.split(marker, 1)[1]) if marker in text else {}
    for letter in {k for k in kept if f"### ({k})" not in "\n".join(lines)}:
        lines += kept[letter]  # measured earlier, not in this run nor in bench/results/latest.json
    lines = lines[:5] + _in_order(lines[5:])
    doc.write_text(head + marker + "\n\n" + "\n".join(lines).rstrip() + "\n")


def _sections(text: str) -> dict[str, list[str]]:
    """The `### (x) ...` sections of the results already in the document, by letter."""
    out: dict[str, list[str]] = {}
    letter = None
    for line in text.splitlines():
        m = re.match(r"### \(([a-z])\)", line)
        if m:
            letter = m.group(1)
            out[letter] = []
        if letter is not None:
            out[letter].append(line)
    for block in out.values():
        while block and not block[-1].strip():
            block.pop()
        block.append("")
    return out


def _in_order(lines: list[str]) -> list[str]:
    sections = _sections("\n".join(lines))
    return [line for letter in sorted(sections) for line in sections[letter]]


def run_attacks(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, tmp: Path, chosen: list[str] | None
) -> dict[str, Any]:
    """(f): a catalog with the test chart `hello` (it takes a nodeSelector), then every case."""
    repo = ChartRepo(tmp / "attack-repo")
    repo.add_chart("hello", "0.1.0")
    source = f"bench-attacks-{uuid.uuid4().hex[:6]}"
    serving = Operator(tmp / "attack-setup.log")  # only to sync the catalog once
    try:
        create_source(custom, source, repo.url)
    finally:
        serving.stop()
    env = Env(
        custom=custom,
        core=core,
        start_operator=lambda name: Operator(
            tmp / f"attack-{re.sub(r'[^a-z0-9]+', '-', name.lower())[:40]}.log"
        ),
        kubectl=kubectl,
        source=source,
        tmp=tmp,
    )
    try:
        return bench_attacks(env, chosen)
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", source)
        repo.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--charts", type=int, default=5000)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--idle", type=float, default=300)
    parser.add_argument("--handovers", type=int, default=3)
    parser.add_argument("--oci-apps", type=int, default=500)
    parser.add_argument("--uploads", type=int, default=500, help="(j): charts uploaded")
    sections = [
        "single",
        "batch",
        "catalog",
        "drift",
        "handover",
        "attacks",
        "hostile",
        "methods",
        "oci",
        "uploads",
        "git",
        "counts",
    ]
    parser.add_argument("--git-apps", type=int, default=500)
    parser.add_argument("--count-installs", type=int, default=1000, help="(l): AppInstalls churning")
    parser.add_argument("--churn-seconds", type=float, default=60, help="(l): how long they churn")
    parser.add_argument("--only", choices=sections, action="append")
    parser.add_argument("--attack", action="append", help="(f): only the cases whose name holds this text")
    args = parser.parse_args()
    only = set(args.only or sections)
    config.load_kube_config(KUBECONFIG)
    custom, core = client.CustomObjectsApi(), client.CoreV1Api()
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "-f", str(ROOT / "crds"))
    tmp = Path(tempfile.mkdtemp(prefix="kubemart-bench-"))
    # (f) runs operators of its own, one per case, with no other operator running.
    op = Operator(tmp / "operator.log") if only - {"attacks"} else None
    results: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "helm": subprocess.run(
            [str(BIN / "helm"), "version", "--short"], capture_output=True, text=True
        ).stdout.strip(),
    }
    try:
        if only & {"single", "batch", "drift"}:
            url, _server, chart = make_repo(tmp)
            source = f"bench-{uuid.uuid4().hex[:6]}"
            create_source(custom, source, url)
            helm_install(
                "warmup", chart, new_namespace(core, "bench-warm")
            )  # first-run costs out of the figures
            if "single" in only:
                results["single"] = bench_single(custom, core, source, chart, args.runs)
                print(json.dumps(results["single"]), flush=True)
            if "batch" in only:
                results["batch"] = bench_batch(custom, core, source, chart, args.batch)
                print(json.dumps(results["batch"]), flush=True)
            if "drift" in only:
                assert op is not None
                results["drift"] = bench_drift(custom, core, op, source, args.apps, args.idle)
                print(json.dumps(results["drift"]), flush=True)
            custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", source)
        if "catalog" in only:
            assert op is not None
            results["catalog"] = bench_catalog(custom, op, tmp, args.charts)
            print(json.dumps(results["catalog"]), flush=True)
        if "oci" in only:
            results["oci"] = bench_oci(
                custom, core, tmp, args.oci_apps, lambda: apiserver_writes("marketapps")
            )
            print(json.dumps(results["oci"]), flush=True)
        if "uploads" in only:
            results["uploads"] = bench_uploads(
                custom, core, lambda: kubectl("get", "--raw", "/metrics"), args.uploads
            )
            print(json.dumps(results["uploads"]), flush=True)
        if "git" in only:
            assert op is not None
            results["git"] = bench_git(
                custom,
                core,
                tmp,
                args.git_apps,
                writes=partial(apiserver_writes, "marketapps"),
                peak_rss_mib=op.peak_rss_mib,
            )
            print(json.dumps(results["git"]), flush=True)
        if "counts" in only:
            results["counts"] = bench_install_counts(
                custom,
                core,
                tmp,
                lambda: kubectl("get", "--raw", "/metrics"),
                installs=args.count_installs,
                churn_seconds=args.churn_seconds,
            )
            print(json.dumps(results["counts"]), flush=True)
        if "handover" in only:
            results["handover"] = bench_handover(core, tmp, args.handovers)
            print(json.dumps(results["handover"]), flush=True)
        if "methods" in only:
            results["methods"] = bench_drift_methods(
                bin_dir=BIN, env=env(), runs=args.runs, apiserver_requests=apiserver_requests
            )
        if "hostile" in only:
            if op is not None:
                op.stop()  # each case runs its own operator
            results["hostile"] = bench_hostile(tmp, charts=args.charts)
    finally:
        if op is not None:
            op.stop()
    if "attacks" in only:
        results["attacks"] = run_attacks(custom, core, tmp, args.attack)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    latest = out / "latest.json"
    # Sections not run this time keep their last figures (each says when it was measured).
    previous = json.loads(latest.read_text()) if latest.exists() else {}
    for section in sections:
        if section in results:
            results[section]["when"] = results["when"]
        elif section in previous:
            results[section] = previous[section]
    latest.write_text(json.dumps(results, indent=2))
    write_report(results, "make bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
