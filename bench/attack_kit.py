"""The kit of bench section (f): a fresh operator per case, watched; helpers that never decode deep objects.

Every case runs against its own `kubemart run`, so that its peak RSS (VmHWM) is the case's own. While
it runs, a watcher samples the operator's RSS, polls kopf's health endpoint (served on the operator's
event loop, so its latency is the loop's lag on any version) and, where the operator has it, reads
`kubemart_event_loop_lag_max_seconds`.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from kubernetes import client

GROUP, VERSION = "kubemart.io", "v1alpha1"
CASE_TIMEOUT = 60.0


class Operator(Protocol):
    health: int
    metrics: int
    webhook: int
    log: Path
    proc: subprocess.Popen[bytes]

    def peak_rss_mib(self) -> float: ...
    def rss_mib(self) -> float: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...


@dataclass
class Env:
    """What every case needs: the API, a way to start an operator, a catalog with `hello`, scratch space."""

    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    start_operator: Callable[[str], Operator]
    kubectl: Callable[..., str]
    source: str
    tmp: Path


@dataclass
class Watch:
    """Samples the operator's RSS, its health endpoint's latency and its loop lag metric, in a thread."""

    op: Operator
    rss: float = 0.0
    health: float = 0.0
    lag: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._memory, self._probe)]
        for t in self._threads:
            t.start()

    def _memory(self) -> None:
        while not self._stop.wait(0.1):
            with suppress(OSError, ValueError):
                self.rss = max(self.rss, self.op.rss_mib())

    def _probe(self) -> None:
        last_metric = 0.0
        while not self._stop.wait(0.2):
            start = time.monotonic()
            with suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{self.op.health}/healthz", timeout=60)
            self.health = max(self.health, time.monotonic() - start)
            if time.monotonic() - last_metric >= 1:
                last_metric = time.monotonic()
                value = metric(self.op, "kubemart_event_loop_lag_max_seconds")
                if value is not None:
                    self.lag = max(self.lag or 0.0, value)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=70)


def metric(op: Operator, name: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{op.metrics}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def tracebacks(op: Operator) -> int:
    return op.log.read_text(errors="replace").count("Traceback")


def run_case(
    env: Env, name: str, replay: Callable[[Env, Operator], str], prepare: Callable[[Env], None] | None = None
) -> dict[str, Any]:
    """Prepare (before the operator starts), start a fresh operator, replay, measure, clean up."""
    started = time.monotonic()
    result: dict[str, Any] = {"case": name}
    try:
        if prepare is not None:
            prepare(env)
        op = env.start_operator(name)
    except Exception as exc:  # a case that cannot even be set up on this version
        return result | {"outcome": f"not replayed: {type(exc).__name__}: {str(exc)[:200]}"}
    watch = Watch(op)
    try:
        result["outcome"] = replay(env, op)
    except Exception as exc:
        result["outcome"] = f"not replayed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        watch.close()
        alive = op.proc.poll() is None
        result["alive"] = alive
        result["peak_rss_mib"] = round(op.peak_rss_mib() if alive else watch.rss, 1)
        result["loop_lag_max_s"] = None if watch.lag is None else round(watch.lag, 3)
        result["health_max_s"] = round(watch.health, 3)
        result["tracebacks"] = tracebacks(op)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["load"] = round(os.getloadavg()[0], 1)  # other work on this machine slows the loop too
        if alive:
            try:
                op.stop()
            except subprocess.TimeoutExpired:
                result["outcome"] = f"{result.get('outcome')}; did not stop within 60 s of SIGTERM (killed)"
                op.kill()
    print(json.dumps(result), flush=True)
    return result


# --- helpers for cases --------------------------------------------------------------------------------------


def new_namespace(env: Env, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    env.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def drop_namespace(env: Env, namespace: str) -> None:
    """Delete a case's namespace whatever the operator does: its AppInstalls' finalizers go first.

    kubectl reads them: this process never decodes an object nested thousands of levels deep."""
    with suppress(subprocess.CalledProcessError):
        for name in env.kubectl("get", "appinstalls", "-n", namespace, "-o", "name").split():
            with suppress(subprocess.CalledProcessError):
                env.kubectl(
                    "patch", name, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
                )
    with suppress(client.ApiException):
        env.core.delete_namespace(namespace)


def ready(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Ready condition once it says True or False (not while Unknown: work in progress)."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") in ("True", "False"):
            return dict(c)
    return None


def app_ready(env: Env, namespace: str, name: str) -> dict[str, Any] | None:
    return ready({"status": status_raw(env, namespace, name)})


def status_raw(env: Env, namespace: str, name: str) -> dict[str, Any]:
    """Status read with kubectl's jsonpath: this process never decodes a deep spec."""
    try:
        out = env.kubectl("get", "appinstall", name, "-n", namespace, "-o", "jsonpath={.status}")
    except subprocess.CalledProcessError:
        return {}
    return json.loads(out) if out.strip() else {}


def wait(probe: Callable[[], Any], timeout: float = CASE_TIMEOUT, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    return None


def say(cond: dict[str, Any] | None, started: float, timeout: float = CASE_TIMEOUT) -> str:
    if cond is None:
        return f"no Ready condition within {timeout:g} s"
    message = str(cond.get("message", ""))
    shown = message if len(message) <= 90 else message[:87] + "..."
    return f"Ready={cond['status']} {cond['reason']} after {time.monotonic() - started:.1f} s: {shown}"


def create_raw(env: Env, namespace: str, text: str) -> str | None:
    """POST an AppInstall as JSON text; None when created, else the API server's refusal."""
    path = env.tmp / f"raw-{uuid.uuid4().hex[:6]}.json"
    path.write_text(text)
    try:
        env.kubectl(
            "create", "--raw", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/appinstalls", "-f", str(path)
        )
        return None
    except subprocess.CalledProcessError as err:
        lines = (err.stderr or str(err)).strip().splitlines()
        # The API server's first reason ("* spec.app: Too long: ..."), or its one line.
        reasons = [line.lstrip("* ") for line in lines if line.startswith("* ")]
        return (reasons or lines or ["refused"])[0][:160]
    finally:
        path.unlink()


@contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def source_outcome(env: Env, name: str, started: float, timeout: float = CASE_TIMEOUT) -> str:
    def settled() -> dict[str, Any] | None:
        return ready(env.custom.get_cluster_custom_object(GROUP, VERSION, "marketsources", name))

    return say(wait(settled, timeout), started, timeout)


def create_source(env: Env, name: str, url: str, interval: str = "1h") -> str | None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MarketSource", "metadata": {"name": name}}
    try:
        env.custom.create_cluster_custom_object(
            GROUP, VERSION, "marketsources", body | {"spec": {"url": url, "interval": interval}}
        )
        return None
    except client.ApiException as exc:
        return f"refused at admission: {str(exc.body)[:160]}"


def delete_source(env: Env, name: str) -> None:
    with suppress(client.ApiException):
        env.custom.patch_cluster_custom_object(
            GROUP, VERSION, "marketsources", name, {"metadata": {"finalizers": None}}
        )
        env.custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", name)
