"""(g) Hostile catalogs: what a repository that attacks the operator costs it (issue "Trust boundaries").

Each case runs against a fresh `kubemart run` process, so its peak RSS (VmHWM) is the case's own, and
a thread asks the operator's health endpoint (served on its event loop) every 50 ms: the longest
answer is how long the event loop was blocked. Run alone with `python bench/hostile_catalogs.py`, or
as part of `make bench` (section f).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.bombs import MiB, alias_bomb, double_gzip, flat_index  # noqa: E402 - shared with the tests
from support.cluster import Cluster  # noqa: E402
from support.generated import generated_index  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.repo import ChartRepo  # noqa: E402

GROUP, VERSION = "kubemart.io", "v1alpha1"
KUBECONFIG = os.environ.get("KUBECONFIG", str(ROOT / ".cluster" / "kubeconfig"))


class LoopProbe:
    """The longest time the operator's event loop took to answer its health endpoint."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=120) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                with contextlib.suppress(httpx.HTTPError):
                    http.get(self.url)
                self.worst = max(self.worst, time.monotonic() - started)
                self._stop.wait(0.05)

    def __enter__(self) -> LoopProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def peak_rss_mib(op: OperatorProcess) -> float:
    assert op.proc is not None
    text = Path(f"/proc/{op.proc.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


def ready_condition(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    obj = custom.get_cluster_custom_object(GROUP, VERSION, "marketsources", name)
    if (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready" and c["status"] in ("True", "False"):
            return dict(c)
    return None


def run_case(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    tmp: Path,
    name: str,
    serve: Callable[[ChartRepo], int],
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    repo = ChartRepo(tmp / f"repo-{uuid.uuid4().hex[:6]}")
    op = OperatorProcess(cluster, extra_env={"KUBEMART_CHART_CACHE_DIR": str(tmp / "charts"), **(env or {})})
    source = f"bench-{uuid.uuid4().hex[:6]}"
    try:
        wire_bytes = serve(repo)
        op.start()
        idle = peak_rss_mib(op)
        with LoopProbe(op.health_port) as probe:
            started = time.monotonic()
            custom.create_cluster_custom_object(
                GROUP,
                VERSION,
                "marketsources",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "MarketSource",
                    "metadata": {"name": source},
                    "spec": {"url": repo.url},
                },
            )
            cond = None
            while cond is None and time.monotonic() - started < timeout:
                cond = ready_condition(custom, source)
                time.sleep(0.2)
            took = time.monotonic() - started
        result = {
            "case": name,
            "wire_bytes": wire_bytes,
            "outcome": f"{cond['status']} {cond['reason']}" if cond else "no answer",
            "seconds_to_answer": round(took, 1),
            "peak_rss_mib": round(peak_rss_mib(op), 1),
            "idle_rss_mib": round(idle, 1),
            "worst_loop_block_s": round(probe.worst, 3),
        }
        print(json.dumps(result), flush=True)
        return result
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", source)
        op.stop()
        repo.close()


def _raw(body: bytes, headers: dict[str, str] | None = None) -> Callable[[ChartRepo], int]:
    def serve(repo: ChartRepo) -> int:
        repo.serve_index_bytes(body, headers)
        return len(body)

    return serve


def _trickle(repo: ChartRepo) -> int:
    repo.trickle_index(1.0)
    return 0


def _charts(count: int) -> Callable[[ChartRepo], int]:
    def serve(repo: ChartRepo) -> int:
        body = generated_index(count, 3, repo.url)
        (repo.public / "index.yaml").write_bytes(body)
        return len(body)

    return serve


def bench_hostile(tmp: Path, *, charts: int = 5000) -> dict[str, Any]:
    cluster = Cluster(kubeconfig=Path(KUBECONFIG), external=True)
    config.load_kube_config(KUBECONFIG)
    custom = client.CustomObjectsApi()
    cases = [
        (
            "double-gzip index (4 GiB of zeros, Content-Encoding: gzip, gzip)",
            _raw(double_gzip(4096 * MiB), {"Content-Encoding": "gzip, gzip"}),
            None,
        ),
        ("alias bomb index (9 levels of 9 aliases)", _raw(alias_bomb()), None),
        ("index within every limit: 1.4 million tiny nodes", _raw(flat_index(1_400_000)), None),
        ("index trickled 1 byte/s (deadline set to 10 s)", _trickle, {"KUBEMART_REPOSITORY_DEADLINE": "10"}),
        (f"a genuine catalog of {charts} charts, 3 versions each", _charts(charts), None),
    ]
    results = [run_case(cluster, custom, tmp, name, serve, env) for name, serve, env in cases]
    return {"cases": results}


def hostile_lines(f: dict[str, Any] | None, when: str) -> list[str]:
    if not f:
        return []
    lines = [
        f"### (g) Hostile catalogs ({f.get('when', when)})",
        "",
        "Each case on a fresh operator process; the loop block is the slowest answer of its health endpoint",
        "(asked every 50 ms), so it is how long the event loop was held.",
        "",
        "| case | on the wire | answer | time to answer | peak RSS (idle) | worst event-loop block |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in f["cases"]:
        lines.append(
            f"| {c['case']} | {c['wire_bytes']:,} B | {c['outcome']} | {c['seconds_to_answer']} s | "
            f"{c['peak_rss_mib']} MiB ({c['idle_rss_mib']}) | {c['worst_loop_block_s']} s |"
        )
    return [*lines, ""]


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="kubemart-hostile-"))
    result = bench_hostile(tmp)
    print("\n".join(hostile_lines(result, "now")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
