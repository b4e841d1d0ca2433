"""`kubectl market`: the real console script (and real kubectl's plugin discovery) against the
real cluster, a real catalog and the real operator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from support.apps import create_source, handled, running
from support.cluster import BIN, Cluster
from support.kube import Objects, ready
from support.operator_process import OperatorProcess
from support.wait import wait_for

PLUGIN = Path(sys.executable).with_name("kubectl-market")


def market(
    cluster: Cluster, *args: str, stdin: str | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run `kubectl-market ARGS` against the test cluster; returns whatever exit code it gave."""
    return subprocess.run(
        [str(PLUGIN), *args],
        env=cluster.env(),
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """The one-line error of a command that had to fail (after progress lines, if it waited)."""
    assert result.returncode == 1, f"exit {result.returncode}: {result.stdout} {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr
    assert "Traceback" not in result.stderr
    return lines[-1]


def test_search_and_info_show_the_catalog(cluster: Cluster, catalog: str) -> None:
    lines = ok(market(cluster, "search")).splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "LATEST", "CATEGORY", "PRICE", "INSTALLS", "DESCRIPTION"]
    rows = [line.split() for line in lines]
    assert any(
        r[:5] == ["hello", catalog, "0.2.0", "<none>", "free"] and r[6:] == ["A", "test", "app"] for r in rows
    )

    found = json.loads(ok(market(cluster, "search", "HELLO", "--source", catalog, "-o", "json")))
    assert found["kind"] == "List"
    assert [(i["kind"], i["spec"]["app"], i["spec"]["source"]) for i in found["items"]] == [
        ("MarketApp", "hello", catalog)
    ]
    nothing = market(cluster, "search", "no-such-app-anywhere")
    assert (nothing.returncode, nothing.stdout, nothing.stderr.strip()) == (0, "", "No apps found.")

    info = ok(market(cluster, "info", "hello", "--source", catalog))
    assert "Name:         hello" in info
    assert f"Source:       {catalog}" in info
    assert "Description:  A test app" in info
    assert "Latest:       0.2.0" in info
    versions = [line.split()[0] for line in info.splitlines() if line.startswith("  0.")]
    assert versions == ["0.2.0", "0.1.0"]
    as_yaml = yaml.safe_load(ok(market(cluster, "info", "hello", "--source", catalog, "-o", "yaml")))
    assert as_yaml["metadata"]["name"] == f"{catalog}.hello"

    error = failed(market(cluster, "info", "no-such-app"))
    assert error == "error: app 'no-such-app' not found; run 'kubectl market search' to see the apps on offer"


def test_install_status_history_stop_resume_retry_uninstall(
    cluster: Cluster, objects: Objects, catalog: str, namespace: str, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("message: from-file\nreplicaCount: 3\n")
    result = market(
        cluster,
        "install",
        "hello",
        "-n",
        namespace,
        "--name",
        "web",
        "--source",
        catalog,
        "--version",
        "~0.1.0",
        "-f",
        str(values),
        "--set",
        "replicaCount=2",
        "--wait",
        "--timeout",
        "3m",
    )
    assert ok(result) == f"appinstall.kubemart.io/web created in namespace {namespace}\n"
    # Progress goes to stderr, ending with the Ready message.
    assert result.stderr.splitlines()[-1] == "web: Running: hello 0.1.0 is installed and ready."
    app = running(objects, namespace, "web")
    assert app is not None, "--wait returned before the app was Running"
    assert app["spec"] == {
        **app["spec"],
        "source": catalog,
        "app": "hello",
        "version": "~0.1.0",
        "values": {"message": "from-file", "replicaCount": 2},
    }
    assert app["status"]["installedVersion"] == "0.1.0"

    table = ok(market(cluster, "status", "-n", namespace)).splitlines()
    assert table[0].split() == ["NAME", "APP", "VERSION", "PHASE", "READY", "AGE", "MESSAGE"]
    assert table[1].split()[:5] == ["web", "hello", "0.1.0", "Running", "True"]
    everywhere = [line.split()[:2] for line in ok(market(cluster, "status", "-A")).splitlines()]
    assert everywhere[0] == ["NAMESPACE", "NAME"]
    assert [namespace, "web"] in everywhere
    one = json.loads(ok(market(cluster, "status", "web", "-n", namespace, "-o", "json")))
    assert (one["kind"], one["status"]["phase"]) == ("AppInstall", "Running")

    # -n defaults to the kubeconfig context's namespace.
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for ctx in config["contexts"]:
        ctx["context"]["namespace"] = namespace
    scoped = tmp_path / "kubeconfig"
    scoped.write_text(yaml.safe_dump(config))
    assert ok(market(cluster, "--kubeconfig", str(scoped), "status")).splitlines()[1].startswith("web ")

    history = ok(market(cluster, "history", "web", "-n", namespace)).splitlines()
    assert history[0].split()[:5] == ["REVISION", "OPERATION", "FROM", "TO", "RESULT"]
    assert history[1].split()[:5] == ["1", "install", "<none>", "0.1.0", "Succeeded"]
    entries = json.loads(ok(market(cluster, "history", "web", "-n", namespace, "-o", "json")))["items"]
    assert [e["operation"] for e in entries] == ["install"]

    ok(market(cluster, "stop", "web", "-n", namespace, "--wait", "--timeout", "2m"))
    app = objects.get("appinstalls", "web", namespace)
    assert app is not None
    assert app["spec"]["stopped"] is True
    assert (app["status"]["phase"], ready(app)) == ("Stopped", True)

    ok(market(cluster, "resume", "web", "-n", namespace, "--wait", "--timeout", "2m"))
    app = running(objects, namespace, "web")
    assert app is not None
    assert app["spec"]["stopped"] is False

    out = ok(market(cluster, "retry", "web", "-n", namespace))
    stamp = objects.get("appinstalls", "web", namespace)["metadata"]["annotations"][  # type: ignore[index]
        "kubemart.io/reconcile-requested-at"
    ]
    assert stamp in out
    wait_for(
        lambda: handled(objects, "appinstalls", "web", stamp, namespace), timeout=60, what="retry handled"
    )
    # --wait waits for the operator to act on the new request.
    out = ok(market(cluster, "retry", "web", "-n", namespace, "--wait", "--timeout", "1m", "-o", "json"))
    again = json.loads(out)
    assert (
        again["status"]["lastHandledReconcileAt"]
        == again["metadata"]["annotations"]["kubemart.io/reconcile-requested-at"]
        != stamp
    )

    out = ok(market(cluster, "uninstall", "web", "-n", namespace, "--wait", "--timeout", "2m"))
    assert out.splitlines() == ["appinstall.kubemart.io/web deleted", "web is uninstalled"]
    assert objects.get("appinstalls", "web", namespace) is None
    helm = cluster.run("helm", "list", "-n", namespace, "-a", "-q")
    assert helm.stdout.strip() == ""


def test_a_failing_install_with_wait_exits_non_zero_with_the_reason(
    cluster: Cluster, objects: Objects, catalog: str, namespace: str
) -> None:
    result = market(
        cluster,
        "install",
        "hello",
        "-n",
        namespace,
        "--source",
        catalog,
        "--version",
        "9.9.9",
        "--wait",
        "--timeout",
        "2m",
    )
    error = failed(result)
    assert error.startswith(
        "error: hello failed: Failed (NoMatchingVersion): No version of hello matches 9.9.9"
    )
    # Progress lines go to stderr before the error; stdout says only what was done.
    assert all(line.startswith("hello: ") for line in result.stderr.splitlines()[:-1])
    assert result.stdout == f"appinstall.kubemart.io/hello created in namespace {namespace}\n"


def test_errors_are_one_line_and_exit_non_zero(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    assert failed(market(cluster, "install", "nope", "-n", namespace)) == (
        "error: app 'nope' not found; run 'kubectl market search' to see the apps on offer"
    )
    assert failed(market(cluster, "install", "hello", "-n", namespace, "--set", "image.tag")) == (
        "error: --set 'image.tag': key 'tag' has no value; write tag=VALUE"
    )
    assert failed(market(cluster, "install", "hello", "-n", namespace, "-f", "/nonexistent.yaml")).startswith(
        "error: the values file /nonexistent.yaml cannot be read"
    )
    assert failed(market(cluster, "install", "hello", "-n", namespace, "-f", "-", stdin="[1, 2]")) == (
        "error: the values file (stdin) must be a YAML mapping of value names to values (like 'replicaCount: 2'), "
        "but it is a list of 2 item(s)"
    )
    assert failed(market(cluster, "status", "ghost", "-n", namespace)) == (
        f"error: app install 'ghost' not found in namespace {namespace}; "
        "'kubectl market status -A' lists the installed apps"
    )
    for command in ("history", "stop", "resume", "retry", "uninstall"):
        assert "app install 'ghost' not found" in failed(market(cluster, command, "ghost", "-n", namespace))
    assert failed(market(cluster, "--context", "nowhere", "search")).startswith(
        "error: Context 'nowhere' not found in the kubeconfig"
    )
    usage = market(cluster, "status", "-o", "xml")
    assert usage.returncode == 2
    assert "Invalid value for '-o'" in usage.stderr

    # The same name twice.
    # (A version that does not exist, so that the operator has nothing to install.)
    ok(market(cluster, "install", "hello", "-n", namespace, "--source", catalog, "--version", "9.9.9"))
    assert failed(market(cluster, "install", "hello", "-n", namespace, "--source", catalog)) == (
        f"error: app install 'hello' already exists in namespace {namespace}; "
        "choose another --name, or change it with 'kubectl edit appinstall'"
    )

    # The same app offered by a second source of equal priority.
    second = f"t-{uuid.uuid4().hex[:8]}"
    url = objects.get("marketsources", catalog)["spec"]["url"]  # type: ignore[index]
    create_source(objects, second, url)
    try:
        wait_for(
            lambda: objects.get("marketapps", f"{second}.hello"), timeout=60, what="second source synced"
        )
        # Other tests' catalogs on a shared cluster may offer it too: those are named as well.
        error = failed(market(cluster, "install", "hello", "-n", namespace, "--name", "other"))
        offered = re.fullmatch(
            r"error: app 'hello' is offered by several sources \((.+)\); choose one with --source, "
            r"e\.g\. --source (\S+)",
            error,
        )
        assert offered, error
        named = offered.group(1).split(", ")
        assert {catalog, second} <= set(named)
        assert named == sorted(named)
        assert offered.group(2) == named[0]
        # A higher priority makes a source the default.
        objects.patch("marketsources", second, {"spec": {"priority": 10}})
        dry = yaml.safe_load(
            ok(
                market(
                    cluster, "install", "hello", "-n", namespace, "--dry-run", "-f", "-", stdin="a: {b: 1}"
                )
            )
        )
        assert dry["spec"] == {"source": second, "app": "hello", "values": {"a": {"b": 1}}}
        assert objects.get("appinstalls", "other", namespace) is None
    finally:
        objects.delete("marketsources", second)


def test_kubectl_finds_the_plugin(cluster: Cluster, catalog: str) -> None:
    env = cluster.env()
    env["PATH"] = os.pathsep.join([str(BIN), str(PLUGIN.parent), "/usr/bin", "/bin"])
    kubectl = str(BIN / "kubectl")
    plugins = subprocess.run(
        [kubectl, "plugin", "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert str(PLUGIN) in plugins.stdout
    result = subprocess.run(
        [kubectl, "market", "search", "hello", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    assert any(i["spec"]["source"] == catalog for i in items)
    result = subprocess.run(
        [kubectl, "market", "info", "no-such-app"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "run 'kubectl market search'" in result.stderr
