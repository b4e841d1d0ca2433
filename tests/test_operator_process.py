"""`kubemart run` starts against the cluster, serves its health endpoint and stops cleanly."""

from __future__ import annotations

from support.cluster import Cluster
from support.operator_process import OperatorProcess
from support.wait import wait_for


def test_operator_starts_reports_health_and_stops_on_sigterm(cluster: Cluster) -> None:
    op = OperatorProcess(cluster)
    op.start()
    try:
        wait_for(
            lambda: "kubemart operator" in op.log() and "started" in op.log(), timeout=30, what="startup log"
        )
    finally:
        op.stop()
    assert op.proc is not None
    assert op.proc.returncode == 0, op.log()
    assert "Traceback" not in op.log()
