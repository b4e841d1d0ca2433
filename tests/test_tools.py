"""The local toolchain: built once from pinned modules, started from local binaries only."""

from __future__ import annotations

import re
import subprocess

import pytest

from support.cluster import ROOT, Cluster


def test_cluster_start_uses_only_local_binaries() -> None:
    out = subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), "dry-run"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    copies = re.findall(r"^# Download (\S+) to ", out, re.M)
    assert len(copies) == 5, out
    assert all(src.startswith(str(ROOT / "bin") + "/") for src in copies), copies
    # The service-account issuer is an identifier inside tokens, not an address anything connects to.
    urls = set(re.findall(r"(https?://[^/\s:]+)", out)) - {"https://kubernetes.default.svc.cluster.local"}
    assert urls <= {"http://0.0.0.0", "https://127.0.0.1", "http://127.0.0.1"}, urls


def test_tool_build_is_a_noop_when_up_to_date() -> None:
    out = subprocess.run(
        [str(ROOT / "hack" / "build.sh")], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert "up to date" in out


def test_cluster_up_twice_is_a_noop(cluster: Cluster) -> None:
    if cluster.external:
        pytest.skip("an external cluster is not started by us")
    out = subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), "up"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "already running" in out
