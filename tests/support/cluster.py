"""The cluster under test: the local kwok control plane, or $KUBECONFIG's cluster."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "bin"


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    external: bool
    started_here: bool = False
    """True when this test session started the local cluster (and so stops it at the end)."""

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def env(self) -> dict[str, str]:
        """Environment for child processes (helm, kubectl, the operator) aimed at this cluster."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a tool from bin/ (kubectl, helm) against this cluster."""
        cmd = [str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *args[1:]]
        return subprocess.run(
            cmd, env=self.env(), check=check, capture_output=True, text=True, timeout=timeout
        )


def start_cluster() -> Cluster:
    if os.environ.get("KUBEMART_TEST_CLUSTER") == "external":
        path = os.environ.get("KUBECONFIG")
        if not path:
            raise RuntimeError("KUBEMART_TEST_CLUSTER=external needs KUBECONFIG to name the cluster")
        return Cluster(kubeconfig=Path(path.split(os.pathsep)[0]), external=True)
    script = str(ROOT / "hack" / "cluster.sh")
    running = subprocess.run([script, "status"], capture_output=True, timeout=60).returncode == 0
    subprocess.run([script, "up"], check=True, timeout=3600)
    state = Path(os.environ.get("KUBEMART_CLUSTER_DIR") or ROOT / ".cluster")
    return Cluster(kubeconfig=state / "kubeconfig", external=False, started_here=not running)


def stop_cluster(cluster: Cluster) -> None:
    """Stop the local cluster if this session started it, unless KUBEMART_KEEP_CLUSTER=1."""
    if cluster.started_here and os.environ.get("KUBEMART_KEEP_CLUSTER") != "1":
        subprocess.run([str(ROOT / "hack" / "cluster.sh"), "down"], check=False, timeout=300)
