"""What Argo CD and kstatus make of Kubemart objects, in every phase the real operator drives them to.

Each scenario captures the live object and checks it against support.health.EXPECTED twice: with
the Argo CD health check of docs/argocd/ run in gopher-lua as Argo CD runs it (bin/luahealth), and
with cli-utils' kstatus (bin/kstatus), on the captured document and, for states that hold, fetched
live again through the kubeconfig. `kubectl wait --for=condition=Ready` is checked on both ends.
"""

from __future__ import annotations

import uuid
from typing import Any

from kubernetes import client

from support.apps import create_source, handled, install, request_reconcile, running
from support.cluster import Cluster
from support.gateway import Gateway
from support.health import EXPECTED, argo_health, kstatus, kstatus_live, record
from support.kube import Objects, condition
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for
from test_payments import buy, phase_is

PLURALS = {
    "AppInstall": "appinstalls",
    "Payment": "payments",
    "MarketSource": "marketsources",
    "NotificationSink": "notificationsinks",
}


def check(cluster: Cluster, name: str, obj: dict[str, Any]) -> None:
    """The captured object reads as EXPECTED[name] to Argo CD and to kstatus."""
    want = EXPECTED[name]
    assert obj["kind"] == want.kind
    record(name, obj)
    argo, ks = argo_health(obj), kstatus(obj)
    assert (argo["status"], ks["status"]) == (want.argo, want.kstatus), (
        f"{name}: Argo CD says {argo}, kstatus says {ks}; status: {obj.get('status')}"
    )
    assert argo["message"], "Argo CD shows a message saying why"
    if want.stable:
        meta = obj["metadata"]
        live = kstatus_live(cluster, PLURALS[want.kind], meta["name"], meta.get("namespace"))
        assert live["status"] == want.kstatus, f"{name}: live kstatus {live}"


def phase(objects: Objects, namespace: str, name: str) -> str | None:
    return ((objects.get("appinstalls", name, namespace) or {}).get("status") or {}).get("phase")


def settled(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The object once the operator has written status for its current generation."""
    if obj and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


def kubectl_wait_ready(cluster: Cluster, namespace: str, name: str, timeout: str) -> tuple[int, str]:
    out = cluster.run(
        "kubectl",
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        f"appinstall/{name}",
        f"--timeout={timeout}",
        check=False,
    )
    return out.returncode, out.stdout + out.stderr


def test_an_app_reads_healthy_running_suspended_when_stopped_or_suspended_and_degraded_when_unwell(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
) -> None:
    install(objects, namespace, "web", source=catalog, app="hello")
    install(objects, namespace, "sick", source=catalog, app="hello", driftDetection={"mode": "disabled"})
    web = wait_for(lambda: running(objects, namespace, "web"), timeout=120, what="web Running")
    check(cluster, "appinstall-running", web)
    assert kubectl_wait_ready(cluster, namespace, "web", "30s")[0] == 0

    # A spec change the operator has not seen yet: Progressing whatever the old conditions say.
    operator.stop()
    try:
        lagging = objects.patch("appinstalls", "web", {"spec": {"values": {"message": "two"}}}, namespace)
        assert lagging["status"]["observedGeneration"] < lagging["metadata"]["generation"]
        check(cluster, "appinstall-generation-lag", lagging)
    finally:
        operator.start()
    wait_for(
        lambda: (a := running(objects, namespace, "web")) and a["status"]["releaseRevision"] == 2,
        timeout=120,
        what="upgraded",
    )

    objects.patch("appinstalls", "web", {"spec": {"stopped": True}}, namespace)
    wait_for(lambda: phase(objects, namespace, "web") == "Stopped", timeout=60, what="Stopped")
    check(cluster, "appinstall-stopped", objects.get("appinstalls", "web", namespace))  # type: ignore[arg-type]
    objects.patch("appinstalls", "web", {"spec": {"stopped": False, "suspend": True}}, namespace)
    suspended = wait_for(
        lambda: (
            (a := settled(objects.get("appinstalls", "web", namespace)))
            and a["status"]["phase"] == "Suspended"
            and a
        ),
        timeout=60,
        what="Suspended",
    )
    check(cluster, "appinstall-suspended", suspended)

    wait_for(lambda: running(objects, namespace, "sick"), timeout=120, what="sick Running")
    # Pods of a new template that no node can take: the Deployment loses availability.
    client.AppsV1Api(k8s).patch_namespaced_deployment(
        "sick",
        namespace,
        {
            "spec": {
                "strategy": {"type": "Recreate", "rollingUpdate": None},
                "template": {"spec": {"nodeSelector": {"nowhere": "x"}}},
            }
        },
    )
    wait_for(lambda: phase(objects, namespace, "sick") == "Degraded", timeout=60, what="Degraded")
    check(cluster, "appinstall-degraded", objects.get("appinstalls", "sick", namespace))  # type: ignore[arg-type]


def test_bad_input_reads_degraded_and_failed_and_what_is_retried_reads_progressing(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    install(objects, namespace, "future", source=catalog, app="hello", version=">=9")
    install(objects, namespace, "many", source=catalog, app="hello", values={"replicaCount": "many"})
    install(objects, namespace, "orphan", source="no-such-source", app="hello")

    def reason(name: str, type_: str = "Ready") -> dict[str, Any] | None:
        obj = settled(objects.get("appinstalls", name, namespace))
        c = condition(obj, type_)
        return obj if c and c["status"] in ("True", "False") and c["reason"] else None

    check(
        cluster, "appinstall-no-matching-version", wait_for(lambda: reason("future", "Stalled"), timeout=60)
    )
    many = wait_for(lambda: reason("many", "Stalled"), timeout=60, what="many Stalled")
    assert condition(many)["reason"] == "ValuesSchemaViolation"  # type: ignore[index]
    check(cluster, "appinstall-values-rejected", many)
    orphan = wait_for(lambda: reason("orphan"), timeout=60, what="orphan Ready=False")
    assert condition(orphan)["reason"] == "SourceNotFound"  # type: ignore[index]
    check(cluster, "appinstall-source-not-found", orphan)

    code, said = kubectl_wait_ready(cluster, namespace, "future", "3s")
    assert code != 0, said
    assert "timed out" in said, said


def test_an_install_in_flight_is_progressing_and_one_that_ran_out_of_retries_is_degraded(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, catalog: str, namespace: str
) -> None:
    # Pods that no node takes: helm waits the whole timeout, then the install fails (no retries).
    install(
        objects,
        namespace,
        "slow",
        source=catalog,
        app="hello",
        timeout="20s",
        values={"nodeSelector": {"no-such-label": "x"}},
    )
    installing = wait_for(
        lambda: (
            (a := objects.get("appinstalls", "slow", namespace))
            and (a.get("status") or {}).get("phase") == "Installing"
            and condition(a, "Reconciling")
            and a
        ),
        timeout=60,
        what="Installing",
    )
    check(cluster, "appinstall-installing", installing)
    failed = wait_for(
        lambda: (a := objects.get("appinstalls", "slow", namespace)) and condition(a, "Stalled") and a,
        timeout=90,
        what="Stalled",
    )
    check(cluster, "appinstall-install-failed", failed)


def test_paid_apps_and_payments_read_as_waiting_paid_and_ended(
    cluster: Cluster, objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    install(objects, namespace, "notes", source=shop, app="notes")
    wait_for(
        lambda: phase(objects, namespace, "notes") == "AwaitingPayment", timeout=30, what="AwaitingPayment"
    )
    check(cluster, "appinstall-awaiting-payment", objects.get("appinstalls", "notes", namespace))  # type: ignore[arg-type]

    buy(objects, namespace, shop)
    buy(objects, namespace, shop, name="other")
    check(
        cluster,
        "payment-awaiting-payment",
        wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="checkout open"),
    )
    other = wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment", name="other"), timeout=30, what="other open"
    )
    gateway.set_state(other["status"]["sessionID"], "failed")
    check(
        cluster,
        "payment-failed",
        wait_for(lambda: phase_is(objects, namespace, "Failed", name="other"), timeout=60, what="Failed"),
    )

    session = objects.get("payments", "buy", namespace)["status"]["sessionID"]  # type: ignore[index]
    gateway.set_state(session, "paid")
    check(
        cluster,
        "payment-verified",
        wait_for(lambda: phase_is(objects, namespace, "Verified"), timeout=60, what="Verified"),
    )
    wait_for(lambda: running(objects, namespace, "notes"), timeout=120, what="installed once paid")

    gateway.set_state(session, "refunded")
    stamp = request_reconcile(objects, "payments", "buy", namespace)
    wait_for(lambda: handled(objects, "payments", "buy", stamp, namespace), timeout=30, what="refund seen")
    check(cluster, "payment-refunded", objects.get("payments", "buy", namespace))  # type: ignore[arg-type]
    revoked = wait_for(
        lambda: (
            (a := objects.get("appinstalls", "notes", namespace))
            and (condition(a) or {}).get("reason") == "LicenseRevoked"
            and a
        ),
        timeout=60,
        what="LicenseRevoked",
    )
    check(cluster, "appinstall-license-revoked", revoked)


def test_a_catalog_reads_healthy_degraded_when_unreachable_and_suspended(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, catalog: str, chart_repo: ChartRepo
) -> None:
    check(cluster, "marketsource-ready", objects.get("marketsources", catalog))  # type: ignore[arg-type]

    down = f"t-down-{uuid.uuid4().hex[:6]}"
    create_source(objects, down, "http://127.0.0.1:9/")  # the discard port: nothing listens
    try:
        unreachable = wait_for(
            lambda: (
                (s := settled(objects.get("marketsources", down)))
                and (condition(s) or {}).get("status") == "False"
                and s
            ),
            timeout=60,
            what="Ready=False",
        )
        check(cluster, "marketsource-unreachable", unreachable)
    finally:
        objects.delete("marketsources", down)

    objects.patch("marketsources", catalog, {"spec": {"suspend": True}})
    suspended = wait_for(
        lambda: (
            (s := settled(objects.get("marketsources", catalog)))
            and (condition(s) or {}).get("reason") == "Suspended"
            and s
        ),
        timeout=60,
        what="Suspended",
    )
    check(cluster, "marketsource-suspended", suspended)
