"""Argo CD health (docs/argocd/*.lua run by bin/luahealth) and kstatus (bin/kstatus) of an object.

EXPECTED is the one table of what each captured phase must read as, shared by the scenario tests
(live objects driven there by the real operator) and the unit tests (the same objects, recorded
under tests/fixtures/health/ by a scenario run with KUBEMART_RECORD_HEALTH_FIXTURES=1).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cluster import BIN, ROOT, Cluster

DOCS = ROOT / "docs" / "argocd"
FIXTURES = ROOT / "tests" / "fixtures" / "health"


@dataclass(frozen=True)
class Expect:
    kind: str
    argo: str
    """Argo CD health: Healthy, Progressing, Suspended, Degraded (or Unknown, Missing)."""
    kstatus: str
    """kstatus: Current, InProgress, Failed, Terminating, NotFound, Unknown."""
    stable: bool = True
    """False for a passing state: kstatus is then computed on the captured object only, not refetched."""


EXPECTED: dict[str, Expect] = {
    "appinstall-running": Expect("AppInstall", "Healthy", "Current"),
    "appinstall-generation-lag": Expect("AppInstall", "Progressing", "InProgress"),
    "appinstall-installing": Expect("AppInstall", "Progressing", "InProgress", stable=False),
    "appinstall-stopped": Expect("AppInstall", "Suspended", "Current"),
    "appinstall-suspended": Expect("AppInstall", "Suspended", "InProgress"),
    "appinstall-degraded": Expect("AppInstall", "Degraded", "InProgress"),
    "appinstall-install-failed": Expect("AppInstall", "Degraded", "Failed"),
    "appinstall-no-matching-version": Expect("AppInstall", "Degraded", "Failed"),
    "appinstall-values-rejected": Expect("AppInstall", "Degraded", "Failed"),
    "appinstall-source-not-found": Expect("AppInstall", "Progressing", "InProgress"),
    "appinstall-awaiting-payment": Expect("AppInstall", "Suspended", "InProgress"),
    "appinstall-license-revoked": Expect("AppInstall", "Degraded", "Failed"),
    "appinstall-insufficient-resources": Expect("AppInstall", "Progressing", "InProgress"),
    "appinstall-kube-version-unsupported": Expect("AppInstall", "Degraded", "Failed"),
    # tests/test_dependencies.py: waiting for a dependency is progress; a cycle needs a person.
    "appinstall-dependency-not-ready": Expect("AppInstall", "Progressing", "InProgress", stable=False),
    "appinstall-dependency-cycle": Expect("AppInstall", "Degraded", "Failed"),
    "appinstall-dependents-exist": Expect("AppInstall", "Progressing", "Terminating", stable=False),
    "payment-awaiting-payment": Expect("Payment", "Progressing", "InProgress"),
    "payment-verified": Expect("Payment", "Healthy", "Current"),
    "payment-failed": Expect("Payment", "Degraded", "Failed"),
    "payment-refunded": Expect("Payment", "Degraded", "Failed"),
    "marketsource-ready": Expect("MarketSource", "Healthy", "Current"),
    "marketsource-unreachable": Expect("MarketSource", "Degraded", "InProgress"),
    "marketsource-suspended": Expect("MarketSource", "Suspended", "InProgress"),
    "notificationsink-ready": Expect("NotificationSink", "Healthy", "Current"),
    "notificationsink-secret-not-found": Expect("NotificationSink", "Degraded", "InProgress"),
    "notificationsink-address-not-allowed": Expect("NotificationSink", "Degraded", "Failed"),
    "notificationsink-suspended": Expect("NotificationSink", "Suspended", "InProgress"),
}


def _run(*args: str, stdin: str | None = None) -> dict[str, str]:
    out = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False, timeout=30)
    assert out.returncode == 0, f"{args[0]} failed ({out.returncode}): {out.stderr}"
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def argo_health(obj: dict[str, Any], *, open_libs: bool = False) -> dict[str, str]:
    """What Argo CD's health check for the object's kind says, run as Argo CD runs it."""
    flags = ["-open-libs"] if open_libs else []
    return _run(str(BIN / "luahealth"), *flags, str(DOCS / f"{obj['kind']}.lua"), "-", stdin=json.dumps(obj))


def kstatus(obj: dict[str, Any]) -> dict[str, str]:
    return _run(str(BIN / "kstatus"), "-", stdin=json.dumps(obj))


def kstatus_live(cluster: Cluster, resource: str, name: str, namespace: str | None = None) -> dict[str, str]:
    ns = ["-n", namespace] if namespace else []
    return _run(str(BIN / "kstatus"), "-kubeconfig", str(cluster.kubeconfig), *ns, resource, name)


def fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.json"


def record(name: str, obj: dict[str, Any]) -> None:
    """Keep the captured object as a fixture, when asked to (KUBEMART_RECORD_HEALTH_FIXTURES=1)."""
    if os.environ.get("KUBEMART_RECORD_HEALTH_FIXTURES") != "1":
        return
    doc = json.loads(json.dumps(obj))
    doc["metadata"].pop("managedFields", None)  # noise: Argo CD strips it before health checks too
    FIXTURES.mkdir(parents=True, exist_ok=True)
    fixture_path(name).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
