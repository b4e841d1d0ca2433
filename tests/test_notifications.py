"""NotificationSinks: the operator's Events reach a real receiver on 127.0.0.1 as signed CloudEvents,
only the sink's own namespace's, filtered, and none lost while the receiver is down or slow."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.apps import handled, install, request_reconcile, running
from support.cluster import Cluster
from support.gateway import Gateway
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.receiver import Receiver
from support.wait import wait_for
from test_health_checks import check
from test_payments import buy, phase_is

PLUGIN = Path(sys.executable).with_name("kubectl-market")

DOWN_SECONDS = float(os.environ.get("KUBEMART_TEST_RECEIVER_DOWN_SECONDS", "30"))
"""How long the receiver stays down (issue 12 says 30 s)."""


def secret(k8s: client.ApiClient, namespace: str, name: str, **data: str) -> None:
    client.CoreV1Api(k8s).create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


def sink(objects: Objects, namespace: str, name: str, url: str, **spec: Any) -> None:
    objects.create(
        "notificationsinks",
        {"kind": "NotificationSink", "metadata": {"name": name}, "spec": {"url": url, **spec}},
        namespace,
    )


def sink_ready(objects: Objects, namespace: str, name: str) -> dict[str, Any] | None:
    obj = objects.get("notificationsinks", name, namespace)
    return obj if ready(obj) else None


@pytest.fixture
def other_namespace(k8s: client.ApiClient) -> Iterator[str]:
    name = f"t-notify-other-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(k8s)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def test_installs_failures_and_drift_arrive_signed_filtered_and_never_from_another_namespace(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
    other_namespace: str,
    receivers: list[Receiver],
    cluster: Cluster,
) -> None:
    mine, warnings, theirs = Receiver(hmac_key=b"k-mine"), Receiver(), Receiver(token="t-theirs")
    receivers += [mine, warnings, theirs]
    secret(k8s, namespace, "hook", hmacKey="k-mine")
    secret(k8s, other_namespace, "hook", token="t-theirs")
    sink(objects, namespace, "all", mine.url, secretRef={"name": "hook"})
    sink(objects, namespace, "warnings", warnings.url, kinds=["AppInstall"], severity="Warning")
    # A tenant asking for another namespace's Events gets its own only.
    sink(objects, other_namespace, "theirs", theirs.url, secretRef={"name": "hook"}, namespaces=[namespace])
    for ns, name in ((namespace, "all"), (namespace, "warnings"), (other_namespace, "theirs")):
        wait_for(
            lambda ns=ns, name=name: sink_ready(objects, ns, name), timeout=30, what=f"sink {name} Ready"
        )

    install(objects, namespace, "web", source=catalog, app="hello")
    install(objects, other_namespace, "web", source=catalog, app="hello")
    install(objects, namespace, "broken", source=catalog, app="hello", version=">=9")
    wait_for(lambda: mine.events(name="web", reason="Installed"), timeout=120, what="Installed notified")
    failed = wait_for(lambda: mine.events(name="broken", type="Warning"), timeout=60, what="failure notified")
    assert failed[0].data["reason"] == "NoMatchingVersion"
    wait_for(lambda: running(objects, namespace, "web"), timeout=60, what="web Running")
    client.AppsV1Api(k8s).delete_namespaced_deployment("web", namespace)
    wait_for(lambda: mine.events(reason="DriftCorrected"), timeout=60, what="drift correction notified")
    wait_for(
        lambda: theirs.events(name="web", reason="Installed"), timeout=120, what="their install notified"
    )

    installed = mine.events(name="web", reason="Installed")[0]
    assert installed.headers["content-type"].startswith("application/cloudevents+json")
    assert installed.attributes["specversion"] == "1.0"
    assert installed.attributes["type"] == "io.kubemart.appinstall.installed"
    assert installed.attributes["source"] == f"/namespaces/{namespace}/appinstall/web"
    assert installed.attributes["subject"] == "web"
    assert set(installed.data) == {"kind", "namespace", "name", "reason", "type", "message"}
    assert all(r.signed for r in mine.events()), "every request carries a valid HMAC-SHA256 signature"
    assert {r.data["namespace"] for r in mine.events()} == {namespace}, mine.dump()
    assert {r.data["namespace"] for r in theirs.events()} == {other_namespace}, theirs.dump()
    assert theirs.refused == 0, "the bearer token was sent"
    got = warnings.events()
    assert got, "warnings arrived"
    assert {(r.data["kind"], r.data["type"]) for r in got} == {("AppInstall", "Warning")}, warnings.dump()
    assert {"NoMatchingVersion", "DriftCorrected"} <= {r.data["reason"] for r in got}
    assert len(set(mine.ids())) == len(mine.ids()), "one id per Event"

    status = wait_for(
        lambda: (
            (s := (objects.get("notificationsinks", "all", namespace) or {}).get("status") or {})
            and s.get("delivered", 0) >= len(mine.events())
            and s
        ),
        timeout=30,
        what="delivery counted in status",
    )
    assert status["lastDelivery"]["httpStatus"] == 202
    assert status["failures"] == 0

    # What `kubectl market notifications` shows of it: the receiver, not its path; the counts.
    shown = subprocess.run(
        [str(PLUGIN), "notifications", "-n", namespace],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    row = next(line.split() for line in shown.splitlines() if line.split()[:1] == ["all"])
    assert row[1] == f"http://127.0.0.1:{mine.port}", shown
    assert row[2] == "Ready", shown
    assert int(row[3]) >= len(mine.events()), shown
    assert "(202)" in shown, shown


def test_payment_verified_and_refund_are_notified(
    k8s: client.ApiClient,
    objects: Objects,
    shop: str,
    gateway: Gateway,
    namespace: str,
    receivers: list[Receiver],
) -> None:
    hook = Receiver(hmac_key=b"k-pay")
    receivers.append(hook)
    secret(k8s, namespace, "hook", hmacKey="k-pay")
    sink(objects, namespace, "pay", hook.url, secretRef={"name": "hook"}, kinds=["Payment"])
    wait_for(lambda: sink_ready(objects, namespace, "pay"), timeout=30, what="sink Ready")

    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="checkout open")
    gateway.set_state(gateway.only_session().id, "paid")
    verified = wait_for(lambda: hook.events(reason="Verified"), timeout=60, what="Verified notified")
    gateway.set_state(gateway.only_session().id, "refunded")
    stamp = request_reconcile(objects, "payments", "buy", namespace)
    wait_for(lambda: handled(objects, "payments", "buy", stamp, namespace), timeout=30, what="refund seen")
    refunded = wait_for(lambda: hook.events(reason="Refunded"), timeout=30, what="refund notified")

    assert verified[0].attributes["type"] == "io.kubemart.payment.verified"
    assert refunded[0].attributes["type"] == "io.kubemart.payment.refunded"
    assert all(r.signed and r.data["kind"] == "Payment" for r in hook.events())
    receipt = objects.get("payments", "buy", namespace)["status"].get("receiptSecretRef")  # type: ignore[index]
    for r in hook.events():  # no receipt, token or key travels
        text = str(r.data)
        assert gateway.token not in text
        assert "receipt.json" not in text
        assert "k-pay" not in text
        assert receipt is None or "protected" not in text


def test_a_receiver_down_then_slow_loses_nothing_keeps_order_and_slows_no_reconcile(
    objects: Objects,
    operator: OperatorProcess,
    catalog: str,
    namespace: str,
    receivers: list[Receiver],
) -> None:
    hook = Receiver()
    receivers.append(hook)
    sink(objects, namespace, "hook", hook.url, kinds=["AppInstall"])
    wait_for(lambda: sink_ready(objects, namespace, "hook"), timeout=30, what="sink Ready")

    failed_before = operator.metric('kubemart_notifications_total{result="failed"}')
    hook.stop()
    down_at = time.monotonic()
    names = [f"missing-{i}" for i in range(6)]
    for name in names:  # each is refused at once (AppNotFound), one Warning Event each
        install(objects, namespace, name, source=catalog, app="no-such-app")
    for name in names:
        wait_for(
            lambda name=name: condition(objects.get("appinstalls", name, namespace)),
            timeout=30,
            what=f"{name} reported while the receiver is down",
        )
    reported_in = time.monotonic() - down_at
    failing = wait_for(
        lambda: (
            (s := (objects.get("notificationsinks", "hook", namespace) or {}).get("status") or {}).get(
                "failures"
            )
            and s
        ),
        timeout=30,
        what="failures counted in status",
    )
    assert "cannot be reached" in failing["lastFailure"]["message"], failing
    assert operator.metric('kubemart_notifications_total{result="failed"}') > failed_before
    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_at)))  # the outage itself, not a wait
    hook.delay = 3.0  # back, but slow
    hook.start()
    slow_at = time.monotonic()
    install(objects, namespace, "late", source=catalog, app="no-such-app")
    wait_for(
        lambda: condition(objects.get("appinstalls", "late", namespace)), timeout=20, what="late reported"
    )
    late_in = time.monotonic() - slow_at
    behind = (
        len(hook.events()) < len(names) + 1
    )  # the slow receiver had not caught up when "late" was reported
    hook.delay = 0.0
    expected = {*names, "late"}
    wait_for(
        lambda: expected <= {r.data["name"] for r in hook.events()},
        timeout=60,
        what="every app's Event delivered after the outage",
    )

    drained_in = time.monotonic() - slow_at
    got = hook.events()
    print(
        f"\nreceiver down {slow_at - down_at:.1f}s; {len(names)} apps reported in {reported_in:.1f}s while down; "
        f"'late' reported in {late_in:.1f}s while slow; {len(got)} notifications all delivered "
        f"{drained_in:.1f}s after it came back"
    )
    times = [r.attributes["time"] for r in got]  # the SDK parses them into datetimes
    assert all(isinstance(t, datetime) for t in times)
    assert times == sorted(times), "delivered in the order the operator posted them"
    kube_events = {
        m_name.rsplit(".", 1)[-1]
        for m_name in (
            e.metadata.name
            for e in client.CoreV1Api(objects.custom.api_client)
            .list_namespaced_event(namespace, field_selector="involvedObject.kind=AppInstall")
            .items
        )
    }
    delivered = {i[:12] for i in hook.ids()}
    assert kube_events <= delivered, f"lost while down: {kube_events - delivered}"
    assert reported_in < 20, f"reconciles waited for the receiver that is down: {reported_in:.1f}s"
    assert late_in < 10, f"a reconcile waited for the slow receiver: {late_in:.1f}s"
    assert behind, "the receiver was still slow and behind while the reconcile went on"


def test_sinks_say_what_to_fix_and_read_right_to_argo_cd_and_kstatus(
    cluster: Cluster, k8s: client.ApiClient, objects: Objects, operator: OperatorProcess, namespace: str
) -> None:
    hook = Receiver()
    try:
        sink(objects, namespace, "ok", hook.url)
        sink(objects, namespace, "nosecret", hook.url, secretRef={"name": "missing"})
        sink(objects, namespace, "metadata", "http://169.254.169.254/latest")
        sink(objects, namespace, "paused", hook.url, suspend=True)

        def reason(name: str, want: str) -> dict[str, Any] | None:
            obj = objects.get("notificationsinks", name, namespace)
            return obj if (condition(obj) or {}).get("reason") == want else None

        check(
            cluster,
            "notificationsink-ready",
            wait_for(lambda: reason("ok", "Ready"), timeout=30, what="Ready"),
        )
        missing = wait_for(lambda: reason("nosecret", "SecretNotFound"), timeout=30, what="SecretNotFound")
        assert "create it with key hmacKey or token" in condition(missing)["message"]  # type: ignore[index]
        check(cluster, "notificationsink-secret-not-found", missing)
        refused = wait_for(
            lambda: reason("metadata", "AddressNotAllowed"), timeout=30, what="AddressNotAllowed"
        )
        assert condition(refused, "Stalled")["status"] == "True"  # type: ignore[index]
        check(cluster, "notificationsink-address-not-allowed", refused)
        check(
            cluster,
            "notificationsink-suspended",
            wait_for(lambda: reason("paused", "Suspended"), timeout=30, what="Suspended"),
        )
        # The missing Secret appears (labelled, so watched): the sink is Ready without waiting for a retry.
        client.CoreV1Api(k8s).create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="missing", labels={"kubemart.io/watch": "true"}),
                string_data={"token": "t"},
            ),
        )
        wait_for(lambda: reason("nosecret", "Ready"), timeout=15, what="Ready once the Secret exists")
    finally:
        hook.close()


def test_catalog_events_reach_only_the_admin_namespaces_sinks(
    objects: Objects, operator: OperatorProcess, namespace: str, receivers: list[Receiver]
) -> None:
    # The test operator runs outside a pod: its admin namespace is `default`.
    admin, tenant = Receiver(), Receiver()
    receivers += [admin, tenant]
    name = f"t-notify-{uuid.uuid4().hex[:6]}"
    sink(objects, "default", name, admin.url, kinds=["MarketSource"], severity="Warning")
    sink(objects, namespace, "tenant", tenant.url)
    try:
        wait_for(lambda: sink_ready(objects, "default", name), timeout=30, what="admin sink Ready")
        wait_for(lambda: sink_ready(objects, namespace, "tenant"), timeout=30, what="tenant sink Ready")
        objects.create(
            "marketsources",
            {
                "kind": "MarketSource",
                "metadata": {"name": name},
                "spec": {"url": "http://127.0.0.1:9/charts"},
            },
        )
        got = wait_for(
            lambda: admin.events(name=name), timeout=60, what="the catalog's failure at the admin sink"
        )
        assert got[0].data["namespace"] == ""
        assert got[0].attributes["source"] == f"/marketsource/{name}"
        assert got[0].data["type"] == "Warning"
        # A later Event of the tenant's own: its sink delivers in order, so had the catalog's Event been
        # queued for it, it would have arrived first.
        install(objects, namespace, "later", source="no-such-source", app="hello")
        wait_for(lambda: tenant.events(name="later"), timeout=30, what="the tenant's own later Event")
        assert all(r.data["namespace"] == namespace for r in tenant.events()), tenant.dump()
        assert not tenant.events(name=name)
    finally:
        objects.delete("marketsources", name)
        objects.delete("notificationsinks", name, "default")
