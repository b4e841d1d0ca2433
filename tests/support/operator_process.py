"""The operator as a real process (`kubemart run`) against the cluster under test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from .cluster import Cluster
from .wait import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """One `kubemart run` process; its log goes to a file that tests can read and attach."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        extra_env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        kubeconfig: Path | None = None,
    ) -> None:
        """`args` go after `kubemart run`; `kubeconfig` runs it with other credentials than the cluster's."""
        self.cluster = cluster
        self.args = args
        self.kubeconfig = kubeconfig
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.webhook_port = free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="kubemart-operator-", suffix=".log")[1])
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60) -> None:
        env = (
            self.cluster.env()
            | {
                "KUBEMART_METRICS_PORT": str(self.metrics_port),
                "KUBEMART_WEBHOOK_PORT": str(self.webhook_port),
            }
            | self.extra_env
        )
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        env["PYTHONUNBUFFERED"] = "1"
        exe = Path(sys.executable).with_name("kubemart")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), "run", "--liveness", f"http://127.0.0.1:{self.health_port}/healthz", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own process group, so that a crash can take its helm subprocesses with it.
                start_new_session=True,
            )
        wait_for(self.healthy, timeout=timeout, what="operator health endpoint")

    def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"operator exited with {self.proc and self.proc.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self, since: int = 0) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return f"(the operator's log {self.log_path} is gone)"

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def crash(self) -> None:
        """SIGKILL the operator and its helm subprocesses, as a node failure or OOM kill would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def metric(self, name: str) -> float:
        """The sum of a Prometheus metric's samples, from the operator's /metrics."""
        import re

        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        # `name` may carry labels: kubemart_operations_total{type="install",result="Succeeded"}.
        base, _, labels = name.partition("{")
        wanted = [w for w in labels.rstrip("}").split(",") if w]
        total = 0.0
        for m in re.finditer(rf"^{re.escape(base)}(?:{{([^}}]*)}})? ([0-9.e+-]+)$", text, re.M):
            have = (m.group(1) or "").split(",")
            if all(w in have for w in wanted):
                total += float(m.group(2))
        return total

    def stop(self, *, timeout: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def __del__(self) -> None:
        if os.environ.get("KUBEMART_KEEP_LOGS") != "1":
            self.log_path.unlink(missing_ok=True)
