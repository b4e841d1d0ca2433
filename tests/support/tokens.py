"""Credentials of a ServiceAccount alone, for tests that must act with its rights and no others."""

from __future__ import annotations

from pathlib import Path

import yaml

from .cluster import Cluster


def token_kubeconfig(cluster: Cluster, account: str, namespace: str, path: Path) -> Path:
    """A kubeconfig that authenticates as `account` with a TokenRequest token: its rights and no others."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    token = cluster.run(
        "kubectl", "create", "token", account, "-n", namespace, "--duration=2h"
    ).stdout.strip()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [server],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": server["name"], "user": account}}],
                "current-context": account,
            }
        )
    )
    return path
