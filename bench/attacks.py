"""(f) Attacks: the cases of issue #9 (points 5-11) replayed against the operator on the local cluster.

Each case runs against a fresh operator (bench/attack_kit.py) and records what the operator did,
whether it was still alive, its peak RSS and the longest event loop lag seen. Nothing is asserted: a
case that cannot be replayed on this version says so and the others go on.
"""

from __future__ import annotations

import gzip
import http.server
import os
import socket
import time
import uuid
import zlib
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import httpx
from kubernetes import client

from attack_kit import (
    CASE_TIMEOUT,
    Env,
    Operator,
    app_ready,
    create_raw,
    create_source,
    delete_source,
    drop_namespace,
    new_namespace,
    run_case,
    say,
    serve,
    source_outcome,
    tracebacks,
    wait,
)
from support.hostile import alias_bomb, appinstall_json, nested_json
from support.repo import ChartRepo

# --- the cases ------------------------------------------------------------------------------------

DEPTHS = (1_000, 5_000, 9_990)


def _deep_objects(env: Env, namespace: str) -> list[str]:
    names = []
    for depth in DEPTHS:
        name = f"deep-{depth}"
        spec = {"source": env.source, "app": "hello"}
        refused = create_raw(env, namespace, appinstall_json(name, spec, values_json=nested_json(depth)))
        names.append(name if refused is None else f"{name} refused at admission: {refused}")
    return names


def _deep_outcome(env: Env, namespace: str, names: list[str], started: float) -> str:
    parts = []
    for name in names:
        if " " in name:
            parts.append(name)
            continue
        cond = wait(lambda name=name: app_ready(env, namespace, name))
        parts.append(f"{name}: {say(cond, started).split(':')[0]}")
    return "; ".join(parts)


def case_deep_values_created(env: Env, op: Operator) -> str:
    namespace = new_namespace(env, "atk-deep")
    try:
        names = _deep_objects(env, namespace)  # the API server takes seconds to store the deepest
        return "times from the last created: " + _deep_outcome(env, namespace, names, time.monotonic())
    finally:
        drop_namespace(env, namespace)


_AT_START: dict[str, Any] = {}


def prepare_deep_values_at_start(env: Env) -> None:
    namespace = new_namespace(env, "atk-deep-start")
    _AT_START.update(namespace=namespace, names=_deep_objects(env, namespace))


def case_deep_values_at_start(env: Env, op: Operator) -> str:
    namespace, names = _AT_START["namespace"], _AT_START["names"]
    try:
        return "operator started with them listed; " + _deep_outcome(env, namespace, names, time.monotonic())
    finally:
        drop_namespace(env, namespace)


def case_values_from_alias_bomb(env: Env, op: Operator) -> str:
    namespace = new_namespace(env, "atk-bomb")
    try:
        text = alias_bomb()
        env.core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bomb"), data={"values.yaml": text}),
        )
        spec = {"source": env.source, "app": "hello", "valuesFrom": [{"kind": "ConfigMap", "name": "bomb"}]}
        started = time.monotonic()
        refused = create_raw(env, namespace, appinstall_json("bomb", spec))
        if refused is not None:
            return f"refused at admission: {refused}"
        cond = wait(lambda: app_ready(env, namespace, "bomb"))
        return f"{len(text)}-byte bomb: {say(cond, started)}"
    finally:
        drop_namespace(env, namespace)


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


def _index_case(
    env: Env, handler: type[http.server.BaseHTTPRequestHandler], what: str, timeout: float = CASE_TIMEOUT
) -> str:
    with serve(handler) as url:
        name = f"atk-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        refused = create_source(env, name, url)
        try:
            return refused or f"{what}: {source_outcome(env, name, started, timeout)}"
        finally:
            delete_source(env, name)


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
    # The operator's whole-request deadline (KUBEMART_REPOSITORY_DEADLINE) is 60 s: wait past it.
    return _index_case(env, _Trickle, "index sent one byte a second", timeout=100)


def case_interval_zero(env: Env, op: Operator) -> str:
    repo = ChartRepo(env.tmp / f"repo-{uuid.uuid4().hex[:6]}")
    repo.add_chart("hello", "0.1.0")
    name = f"atk-{uuid.uuid4().hex[:6]}"
    try:
        refused = create_source(env, name, repo.url, interval="0s")
        if refused:
            return refused
        started = time.monotonic()
        first = source_outcome(env, name, started)
        before = sum(p.endswith("index.yaml") for p in repo.log.paths())
        time.sleep(30)  # the measurement: index fetches while nothing changes
        after = sum(p.endswith("index.yaml") for p in repo.log.paths())
        return f"{first.split(':')[0]}; then {after - before} index fetches in 30 s"
    finally:
        delete_source(env, name)
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
    before = tracebacks(op)
    body = "[" * 30_000 + "]" * 30_000
    try:
        response = httpx.post(f"http://127.0.0.1:{op.webhook}/webhooks/payment", content=body, timeout=30)
    except httpx.HTTPError as exc:
        return f"no answer: {type(exc).__name__}"
    time.sleep(1)  # let the log be written
    return f"HTTP {response.status_code}; {tracebacks(op) - before} traceback(s) logged"


def case_huge_app_name(env: Env, op: Operator) -> str:
    namespace = new_namespace(env, "atk-name")
    try:
        refused = create_raw(
            env, namespace, appinstall_json("huge", {"source": env.source, "app": "a" * 600_000})
        )
        if refused is not None:
            return f"refused at admission: {refused}"
        started = time.monotonic()
        cond = wait(lambda: app_ready(env, namespace, "huge"))
        return f"admitted; {say(cond, started)}"
    finally:
        drop_namespace(env, namespace)


def case_never_ready_installs(env: Env, op: Operator) -> str:
    slots = 16  # KUBEMART_MAX_CONCURRENT_HELM's default
    greedy, other = new_namespace(env, "atk-greedy"), new_namespace(env, "atk-other")
    try:
        for i in range(slots):
            spec = {
                "source": env.source,
                "app": "hello",
                "timeout": "1000h",
                "values": {"nodeSelector": {"no-such-node": "x"}},
            }
            create_raw(env, greedy, appinstall_json(f"stuck-{i}", spec))
        time.sleep(10)  # the greedy installs take every helm slot
        started = time.monotonic()
        create_raw(env, other, appinstall_json("victim", {"source": env.source, "app": "hello"}))

        def ready() -> bool:
            cond = app_ready(env, other, "victim")
            return bool(cond and cond["status"] == "True")

        if wait(ready, timeout=120):
            return f"{slots} never-ready installs in one namespace; another namespace's app Ready in {time.monotonic() - started:.1f} s"
        return f"{slots} never-ready installs in one namespace; another namespace's app not Ready within 120 s (starved)"
    finally:
        drop_namespace(env, greedy)
        drop_namespace(env, other)


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


def attacks_report(f: dict[str, Any], when: str) -> list[str]:
    lines = [
        f"### (f) Attacks: issue #9, points 5-11, replayed ({f.get('when', when)})",
        "",
        "Each case against a fresh operator. Loop lag: `kubemart_event_loop_lag_max_seconds` (`-`: the",
        "operator has no such metric); health: the slowest answer of kopf's health endpoint, on the same loop,",
        "polled every 0.2 s; load: the machine's 1-minute load average at the end (2 cores, shared).",
        "Targets: peak RSS under 300 MiB, loop lag under 1 s.",
        "",
        "| case | what happened | alive | peak RSS | loop lag | health | tracebacks | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in f["cases"]:
        lag = "-" if c.get("loop_lag_max_s") is None else f"{c['loop_lag_max_s']} s"
        outcome = str(c.get("outcome", "")).replace("|", "/")
        if "alive" not in c:
            lines.append(f"| {c['case']} | {outcome} | | | | | | |")
            continue
        lines.append(
            f"| {c['case']} | {outcome} | {'yes' if c['alive'] else '**no**'} | {c['peak_rss_mib']} MiB "
            f"| {lag} | {c['health_max_s']} s | {c['tracebacks']} | {c.get('load', '')} |"
        )
    return [*lines, ""]
