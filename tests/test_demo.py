"""The demo of `make run`: the example catalog served, registered, browsed, and one app Running."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from support.cluster import ROOT, Cluster
from support.kube import Objects, ready
from support.operator_process import OperatorProcess, free_port
from support.wait import wait_for


@pytest.fixture
def demo(cluster: Cluster, objects: Objects) -> Iterator[None]:
    if cluster.external:
        pytest.skip("the demo serves its catalog on this machine's 127.0.0.1")
    env = cluster.env() | {"KUBEMART_DEMO_PORT": str(free_port())}
    subprocess.run(
        [str(ROOT / "hack" / "demo.sh"), "prepare"], env=env, check=True, capture_output=True, timeout=120
    )
    yield
    objects.delete("appinstalls", "hello", "demo")
    wait_for(
        lambda: objects.get("appinstalls", "hello", "demo") is None, timeout=120, what="demo app uninstalled"
    )
    objects.delete("marketsources", "demo")
    cluster.run("kubectl", "delete", "namespace", "demo", "--wait=false")
    pid_file = ROOT / ".cluster" / "demo-repo.pid"
    if pid_file.exists():
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def test_demo_catalog_is_browsable_and_its_app_runs(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, demo: None
) -> None:
    app = wait_for(
        lambda: (
            (a := objects.get("appinstalls", "hello", "demo"))
            and ready(a)
            and a["status"]["phase"] == "Running"
            and a
        ),
        timeout=120,
        what="demo app Running",
    )
    assert app["status"]["installedVersion"] == "1.0.0"
    apps = {a["spec"]["app"]: a["spec"] for a in objects.list("marketapps", labels="kubemart.io/source=demo")}
    assert sorted(apps) == ["hello-web", "notes", "uptime", "wiki"]
    assert apps["notes"]["price"] == {"amount": "4.99", "currency": "USD"}
    listing = cluster.run("kubectl", "get", "kubemart", "-A").stdout
    for line in (
        "marketsource.kubemart.io/demo",
        "marketapp.kubemart.io/demo.notes",
        "appinstall.kubemart.io/hello",
    ):
        assert line in listing
    browse = cluster.run("kubectl", "get", "marketapps", "-l", "kubemart.io/category=productivity").stdout
    assert "demo.notes" in browse
    assert "demo.wiki" in browse
