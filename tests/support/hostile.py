"""Hostile inputs for scenario tests and the benchmark (issue #9), built without recursion."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .cluster import Cluster

GROUP, VERSION = "kubemart.io", "v1alpha1"


def nested_json(depth: int, leaf: str = '"x"') -> str:
    """JSON text of `depth` maps nested in one another: {"a":{"a":...}} (json.dumps would recurse)."""
    return '{"a":' * depth + leaf + "}" * depth


def appinstall_json(name: str, spec: dict[str, Any], *, values_json: str | None = None) -> str:
    """An AppInstall as JSON text; `values_json` (text) becomes spec.values as it is."""
    if values_json is not None:
        spec = {**spec, "values": "<values>"}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AppInstall",
        "metadata": {"name": name},
        "spec": spec,
    }
    text = json.dumps(body)
    return text if values_json is None else text.replace('"<values>"', values_json, 1)


def create_raw(cluster: Cluster, namespace: str, text: str) -> tuple[bool, str]:
    """POST an AppInstall's JSON text as it is (kubectl create --raw); (created, the server's answer)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(text)
    try:
        out = cluster.run(
            "kubectl",
            "create",
            "--raw",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/appinstalls",
            "-f",
            f.name,
            check=False,
        )
    finally:
        Path(f.name).unlink()
    return out.returncode == 0, out.stdout + out.stderr


def status_of(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """An AppInstall's status, read without decoding its (possibly very deep) spec in this process."""
    out = cluster.run(
        "kubectl", "get", "appinstall", name, "-n", namespace, "-o", "jsonpath={.status}", check=False
    )
    return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else {}


def condition_of(status: dict[str, Any], type_: str = "Ready") -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A few hundred bytes of YAML whose nested aliases expand to width**levels strings ("billion laughs")."""
    lines = ["a: &a [" + ",".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"
