"""(f) Attacks: the cases of issue #9 (points 5-11) replayed against the operator on the local cluster.

Each case runs against a fresh `kubemart run` (so that its peak RSS, VmHWM, is the case's own) and
records what the operator did, whether it was still alive, its peak RSS and the longest event loop
lag seen: `kubemart_event_loop_lag_max_seconds` where the operator has it, and on any version the
slowest answer of kopf's health endpoint (served on the same loop) polled every 0.2 s. Nothing is
asserted: a case that cannot be replayed on this version says so and the others go on.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from kubernetes import client

from support.hostile import alias_bomb, appinstall_json, nested_json
from support.repo import ChartRepo

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
                value = _metric(self.op, "kubemart_event_loop_lag_max_seconds")
                if value is not None:
                    self.lag = max(self.lag or 0.0, value)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=70)


def _metric(op: Operator, name: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{op.metrics}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _tracebacks(op: Operator) -> int:
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
        result["tracebacks"] = _tracebacks(op)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["load"] = round(os.getloadavg()[0], 1)  # other work on this machine slows the loop too
        if alive:
            op.stop()
    print(json.dumps(result), flush=True)
    return result


# --- helpers --------------------------------------------------------------------------------------


def _namespace(env: Env, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    env.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def _drop_namespace(env: Env, namespace: str) -> None:
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


def _ready(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Ready condition once it says True or False (not while Unknown: work in progress)."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") in ("True", "False"):
            return dict(c)
    return None


def _app_ready(env: Env, namespace: str, name: str) -> dict[str, Any] | None:
    return _ready({"status": _status_raw(env, namespace, name)})


def _status_raw(env: Env, namespace: str, name: str) -> dict[str, Any]:
    """Status read with kubectl's jsonpath: this process never decodes a deep spec."""
    try:
        out = env.kubectl("get", "appinstall", name, "-n", namespace, "-o", "jsonpath={.status}")
    except subprocess.CalledProcessError:
        return {}
    return json.loads(out) if out.strip() else {}


def _wait(probe: Callable[[], Any], timeout: float = CASE_TIMEOUT, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    return None


def _say(cond: dict[str, Any] | None, started: float) -> str:
    if cond is None:
        return f"no Ready condition within {CASE_TIMEOUT:g} s"
    message = str(cond.get("message", ""))
    shown = message if len(message) <= 90 else message[:87] + "..."
    return f"Ready={cond['status']} {cond['reason']} after {time.monotonic() - started:.1f} s: {shown}"


def _create_raw(env: Env, namespace: str, text: str) -> str | None:
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
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _source_outcome(env: Env, name: str, started: float) -> str:
    def ready() -> dict[str, Any] | None:
        return _ready(env.custom.get_cluster_custom_object(GROUP, VERSION, "marketsources", name))

    return _say(_wait(ready), started)


def _create_source(env: Env, name: str, url: str, interval: str = "1h") -> str | None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MarketSource", "metadata": {"name": name}}
    try:
        env.custom.create_cluster_custom_object(
            GROUP, VERSION, "marketsources", body | {"spec": {"url": url, "interval": interval}}
        )
        return None
    except client.ApiException as exc:
        return f"refused at admission: {str(exc.body)[:160]}"


def _delete_source(env: Env, name: str) -> None:
    with suppress(client.ApiException):
        env.custom.patch_cluster_custom_object(
            GROUP, VERSION, "marketsources", name, {"metadata": {"finalizers": None}}
        )
        env.custom.delete_cluster_custom_object(GROUP, VERSION, "marketsources", name)


# --- the cases ------------------------------------------------------------------------------------

DEPTHS = (1_000, 5_000, 9_990)


def _deep_objects(env: Env, namespace: str) -> list[str]:
    names = []
    for depth in DEPTHS:
        name = f"deep-{depth}"
        spec = {"source": env.source, "app": "hello"}
        refused = _create_raw(env, namespace, appinstall_json(name, spec, values_json=nested_json(depth)))
        names.append(name if refused is None else f"{name} refused at admission: {refused}")
    return names


def _deep_outcome(env: Env, namespace: str, names: list[str], started: float) -> str:
    parts = []
    for name in names:
        if " " in name:
            parts.append(name)
            continue
        cond = _wait(lambda name=name: _app_ready(env, namespace, name))
        parts.append(f"{name}: {_say(cond, started).split(':')[0]}")
    return "; ".join(parts)


def case_deep_values_created(env: Env, op: Operator) -> str:
    namespace = _namespace(env, "atk-deep")
    try:
        names = _deep_objects(env, namespace)  # the API server takes seconds to store the deepest
        return "times from the last created: " + _deep_outcome(env, namespace, names, time.monotonic())
    finally:
        _drop_namespace(env, namespace)


_AT_START: dict[str, Any] = {}


def prepare_deep_values_at_start(env: Env) -> None:
    namespace = _namespace(env, "atk-deep-start")
    _AT_START.update(namespace=namespace, names=_deep_objects(env, namespace))


def case_deep_values_at_start(env: Env, op: Operator) -> str:
    namespace, names = _AT_START["namespace"], _AT_START["names"]
    try:
        return "operator started with them listed; " + _deep_outcome(env, namespace, names, time.monotonic())
    finally:
        _drop_namespace(env, namespace)


def case_values_from_alias_bomb(env: Env, op: Operator) -> str:
    namespace = _namespace(env, "atk-bomb")
    try:
        text = alias_bomb()
        env.core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bomb"), data={"values.yaml": text}),
        )
        spec = {"source": env.source, "app": "hello", "valuesFrom": [{"kind": "ConfigMap", "name": "bomb"}]}
        started = time.monotonic()
        refused = _create_raw(env, namespace, appinstall_json("bomb", spec))
        if refused is not None:
            return f"refused at admission: {refused}"
        cond = _wait(lambda: _app_ready(env, namespace, "bomb"))
        return f"{len(text)}-byte bomb: {_say(cond, started)}"
    finally:
        _drop_namespace(env, namespace)


class _GzipGzip(http.server.BaseHTTPRequestHandler):
    """index.yaml as 1 GiB of zeros, gzip inside gzip: a few KiB on the wire."""

    body: bytes = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-yaml")
        self.send_header("Content-Encoding", "gzip, gzip")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: Any) -> None:
        pass


def _gzip_gzip_body(size: int = 1 << 30) -> bytes:
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    chunk = bytes(1 << 20)
    parts = [inner.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(inner.flush())
    return gzip.compress(b"".join(parts), 9)


class _AliasIndex(http.server.BaseHTTPRequestHandler):
    """A 500-byte index.yaml whose one chart entry is an alias expanding to 10**10 strings."""

    body = (
        "apiVersion: v1\nlaughs:\n"
        + "".join(f"  {line}\n" for line in alias_bomb(levels=10, width=10).splitlines())
        + "entries:\n  hello:\n  - name: hello\n    version: 0.1.0\n    urls: *j\n    keywords: *j\n"
    ).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: Any) -> None:
        pass


def _index_case(env: Env, handler: type[http.server.BaseHTTPRequestHandler], what: str) -> str:
    with _serve(handler) as url:
        name = f"atk-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        refused = _create_source(env, name, url)
        try:
            return refused or f"{what}: {_source_outcome(env, name, started)}"
        finally:
            _delete_source(env, name)


def prepare_gzip_gzip(env: Env) -> None:
    _GzipGzip.body = _gzip_gzip_body()


def case_index_gzip_gzip(env: Env, op: Operator) -> str:
    return _index_case(env, _GzipGzip, f"{len(_GzipGzip.body)} bytes inflating to 1 GiB")


def case_index_aliases(env: Env, op: Operator) -> str:
    return _index_case(env, _AliasIndex, f"{len(_AliasIndex.body)}-byte index of nested aliases")


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Answers at once, then sends index.yaml one byte a second."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        with suppress(OSError):
            for _ in range(600):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)

    def log_message(self, *_: Any) -> None:
        pass


def case_index_trickle(env: Env, op: Operator) -> str:
    return _index_case(env, _Trickle, "index sent one byte a second")


def case_interval_zero(env: Env, op: Operator) -> str:
    repo = ChartRepo(env.tmp / f"repo-{uuid.uuid4().hex[:6]}")
    repo.add_chart("hello", "0.1.0")
    name = f"atk-{uuid.uuid4().hex[:6]}"
    try:
        refused = _create_source(env, name, repo.url, interval="0s")
        if refused:
            return refused
        started = time.monotonic()
        first = _source_outcome(env, name, started)
        before = sum(p.endswith("index.yaml") for p in repo.log.paths())
        time.sleep(30)  # the measurement: index fetches while nothing changes
        after = sum(p.endswith("index.yaml") for p in repo.log.paths())
        return f"{first.split(':')[0]}; then {after - before} index fetches in 30 s"
    finally:
        _delete_source(env, name)
        repo.close()


def case_idle_connections(env: Env, op: Operator) -> str:
    ports = {"metrics": op.metrics, "webhooks": op.webhook}
    held: list[socket.socket] = []
    try:
        for port in ports.values():
            for _ in range(2000):
                with suppress(OSError):
                    held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            for _ in range(100):  # slowloris: a header started, never finished
                with suppress(OSError):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
                    held.append(s)
        start = time.monotonic()
        try:
            status = httpx.get(f"http://127.0.0.1:{op.metrics}/metrics", timeout=30).status_code
            answer = f"/metrics answered {status} in {time.monotonic() - start:.2f} s"
        except httpx.HTTPError as exc:
            answer = f"/metrics did not answer: {type(exc).__name__}"
        fds = len(os.listdir(f"/proc/{op.proc.pid}/fd"))
        time.sleep(15)  # the idle timeout (10 s by default) passes
        fds_later = len(os.listdir(f"/proc/{op.proc.pid}/fd"))
        return f"{len(held)} idle/slow connections: {answer}; operator fds {fds}, {fds_later} after 15 s"
    finally:
        for s in held:
            s.close()


def case_deep_webhook_body(env: Env, op: Operator) -> str:
    before = _tracebacks(op)
    body = "[" * 30_000 + "]" * 30_000
    try:
        response = httpx.post(f"http://127.0.0.1:{op.webhook}/webhooks/payment", content=body, timeout=30)
    except httpx.HTTPError as exc:
        return f"no answer: {type(exc).__name__}"
    time.sleep(1)  # let the log be written
    return f"HTTP {response.status_code}; {_tracebacks(op) - before} traceback(s) logged"


def case_huge_app_name(env: Env, op: Operator) -> str:
    namespace = _namespace(env, "atk-name")
    try:
        refused = _create_raw(
            env, namespace, appinstall_json("huge", {"source": env.source, "app": "a" * 600_000})
        )
        if refused is not None:
            return f"refused at admission: {refused}"
        started = time.monotonic()
        cond = _wait(lambda: _app_ready(env, namespace, "huge"))
        return f"admitted; {_say(cond, started)}"
    finally:
        _drop_namespace(env, namespace)


def case_never_ready_installs(env: Env, op: Operator) -> str:
    slots = 16  # KUBEMART_MAX_CONCURRENT_HELM's default
    greedy, other = _namespace(env, "atk-greedy"), _namespace(env, "atk-other")
    try:
        for i in range(slots):
            spec = {
                "source": env.source,
                "app": "hello",
                "timeout": "1000h",
                "values": {"nodeSelector": {"no-such-node": "x"}},
            }
            _create_raw(env, greedy, appinstall_json(f"stuck-{i}", spec))
        time.sleep(10)  # the greedy installs take every helm slot
        started = time.monotonic()
        _create_raw(env, other, appinstall_json("victim", {"source": env.source, "app": "hello"}))

        def ready() -> bool:
            cond = _app_ready(env, other, "victim")
            return bool(cond and cond["status"] == "True")

        if _wait(ready, timeout=120):
            return f"{slots} never-ready installs in one namespace; another namespace's app Ready in {time.monotonic() - started:.1f} s"
        return f"{slots} never-ready installs in one namespace; another namespace's app not Ready within 120 s (starved)"
    finally:
        _drop_namespace(env, greedy)
        _drop_namespace(env, other)


CASES: list[tuple[str, Callable[[Env, Operator], str], Callable[[Env], None] | None]] = [
    (
        "5. spec.values 1,000 / 5,000 / 9,990 levels deep, created while running",
        case_deep_values_created,
        None,
    ),
    ("5. the same, present at start (initial LIST)", case_deep_values_at_start, prepare_deep_values_at_start),
    ("6. valuesFrom ConfigMap alias bomb", case_values_from_alias_bomb, None),
    ("7/10. index.yaml gzip inside gzip", case_index_gzip_gzip, prepare_gzip_gzip),
    ("7. index.yaml of nested aliases", case_index_aliases, None),
    ("10. index.yaml trickled one byte a second", case_index_trickle, None),
    ("10. MarketSource interval 0s", case_interval_zero, None),
    ("10. 4,000 idle and 200 slowloris connections", case_idle_connections, None),
    ("10. webhook body nested 30,000 deep", case_deep_webhook_body, None),
    ("11. spec.app of 600 KB", case_huge_app_name, None),
    ("9. never-ready installs filling every helm slot", case_never_ready_installs, None),
]


def bench_attacks(env: Env, chosen: list[str] | None = None) -> dict[str, Any]:
    cases = [c for c in CASES if not chosen or any(text in c[0] for text in chosen)]
    return {"cases": [run_case(env, name, replay, prepare) for name, replay, prepare in cases]}
