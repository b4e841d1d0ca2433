"""Paid apps: an AppInstall waits for a verified receipt, proceeds at once when paid, stops on refund."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes import client

from kubemart.domain import receipts
from kubemart.domain.catalog import object_name
from support.apps import handled, install, request_reconcile, running
from support.cluster import Cluster
from support.gateway import Gateway
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for
from test_payments import PAID, buy, phase_is, reason_is


def app_phase(objects: Objects, namespace: str, name: str = "notes") -> str | None:
    return ((objects.get("appinstalls", name, namespace) or {}).get("status") or {}).get("phase")


def test_paid_app_waits_installs_when_paid_and_stops_on_refund(
    cluster: Cluster, k8s: client.ApiClient, objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    install(objects, namespace, "notes", source=shop, app="notes")
    wait_for(lambda: app_phase(objects, namespace) == "AwaitingPayment", timeout=30, what="AwaitingPayment")
    cond = condition(objects.get("appinstalls", "notes", namespace))
    assert cond["reason"] == "PaymentRequired"  # type: ignore[index]
    assert "create a Payment" in cond["message"]  # type: ignore[index]

    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="checkout open")
    wait_for(
        lambda: (
            "pay at" in (condition(objects.get("appinstalls", "notes", namespace)) or {}).get("message", "")
        ),
        timeout=30,
        what="the checkout URL shown on the AppInstall",
    )
    gateway.set_state(gateway.only_session().id, "paid")
    wait_for(lambda: running(objects, namespace, "notes"), timeout=120, what="installed once paid")
    values = json.loads(cluster.run("helm", "get", "values", "notes", "-n", namespace, "-o", "json").stdout)
    assert values["kubemartLicense"] == {"secretName": "buy-receipt", "payment": "buy"}

    gateway.set_state(gateway.only_session().id, "refunded")
    stamp = request_reconcile(objects, "payments", "buy", namespace)
    wait_for(lambda: handled(objects, "payments", "buy", stamp, namespace), timeout=30, what="refund seen")
    wait_for(lambda: app_phase(objects, namespace) == "Stopped", timeout=60, what="stopped on refund")
    assert condition(objects.get("appinstalls", "notes", namespace))["reason"] == "LicenseRevoked"  # type: ignore[index]
    apps = client.AppsV1Api(k8s)
    wait_for(
        lambda: apps.read_namespaced_deployment("notes", namespace).spec.replicas == 0,
        timeout=30,
        what="scaled to zero",
    )
    assert client.CoreV1Api(k8s).read_namespaced_config_map("notes-config", namespace), (
        "the app's data is kept"
    )


def test_a_made_up_receipt_unlocks_nothing(
    k8s: client.ApiClient, objects: Objects, shop: str, namespace: str
) -> None:
    # A user's own Payment with a status and a receipt Secret written by hand, signed by a key of their own.
    objects.create(
        "payments",
        {"kind": "Payment", "metadata": {"name": "fake"}, "spec": {"source": shop, "app": "notes"}},
        namespace,
    )
    fake = objects.get("payments", "fake", namespace)
    claims: dict[str, Any] = {
        "source": shop,
        "app": "notes",
        "developer": "Acme Apps",
        "buyer": namespace,
        "amount": "4.99",
        "currency": "USD",
        "session": "cs_fake",
        "paidAt": "2026-11-22T00:00:00Z",
    }
    receipt = receipts.sign(claims, Ed25519PrivateKey.generate())
    owner = client.V1OwnerReference(
        api_version="kubemart.io/v1alpha1", kind="Payment", name="fake", uid=fake["metadata"]["uid"]
    )  # type: ignore[index]
    client.CoreV1Api(k8s).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="fake-receipt", owner_references=[owner]),
            data={"receipt.json": base64.b64encode(json.dumps(receipt).encode()).decode()},
        ),
    )
    objects.custom.patch_namespaced_custom_object_status(
        "kubemart.io",
        "v1alpha1",
        namespace,
        "payments",
        "fake",
        {
            "status": {
                "phase": "Verified",
                "sessionID": "cs_fake",
                "receiptSecretRef": {"name": "fake-receipt"},
            }
        },
    )
    install(objects, namespace, "notes", source=shop, app="notes")
    wait_for(
        lambda: app_phase(objects, namespace) == "AwaitingPayment", timeout=30, what="still AwaitingPayment"
    )
    stamp = request_reconcile(objects, "appinstalls", "notes", namespace)
    wait_for(
        lambda: handled(objects, "appinstalls", "notes", stamp, namespace), timeout=30, what="looked again"
    )
    assert app_phase(objects, namespace) == "AwaitingPayment"


def test_two_payments_each_get_a_checkout_and_one_paid_is_enough(
    objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    buy(objects, namespace, shop, name="first")
    buy(objects, namespace, shop, name="second")
    wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment", name="first"), timeout=30, what="first open"
    )
    wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment", name="second"), timeout=30, what="second open"
    )
    assert len(gateway.sessions) == 2, "one checkout session each"
    install(objects, namespace, "notes", source=shop, app="notes")
    first = objects.get("payments", "first", namespace)["status"]["sessionID"]  # type: ignore[index]
    gateway.set_state(first, "paid")
    wait_for(lambda: running(objects, namespace, "notes"), timeout=120, what="installed")
    assert phase_is(objects, namespace, "AwaitingPayment", name="second"), "the other checkout stays open"


def test_deleting_the_payment_of_an_installed_app_revokes_its_licence(
    k8s: client.ApiClient, objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    gateway.set_state(gateway.only_session().id, "paid")
    install(objects, namespace, "notes", source=shop, app="notes")
    wait_for(lambda: running(objects, namespace, "notes"), timeout=120, what="installed")
    objects.delete("payments", "buy", namespace)
    wait_for(lambda: app_phase(objects, namespace) == "Stopped", timeout=60, what="stopped")
    assert condition(objects.get("appinstalls", "notes", namespace))["reason"] == "LicenseRevoked"  # type: ignore[index]


def test_an_app_that_becomes_free_ends_unpaid_payments_once_and_keeps_paid_ones(
    objects: Objects, shop: str, gateway: Gateway, chart_repo: ChartRepo, namespace: str
) -> None:
    buy(objects, namespace, shop, name="paid")
    p = wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment", "paid"), timeout=30, what="checkout")
    gateway.set_state(p["status"]["sessionID"], "paid")
    wait_for(lambda: phase_is(objects, namespace, "Verified", "paid"), timeout=60, what="Verified")
    buy(objects, namespace, shop, name="open")
    p = wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment", "open"), timeout=30, what="checkout")
    open_session = p["status"]["sessionID"]

    # The developer publishes a version without a price: the app is free from now on.
    chart_repo.add_chart("notes", "1.1.0", annotations={k: v for k, v in PAID.items() if "price" not in k})
    request_reconcile(objects, "marketsources", shop)
    wait_for(
        lambda: "price" not in objects.get("marketapps", object_name(shop, "notes"))["spec"],  # type: ignore[index]
        timeout=60,
        what="the app free in the catalog",
    )
    for name in ("paid", "open"):
        request_reconcile(objects, "payments", name, namespace)
    p = wait_for(lambda: reason_is(objects, namespace, "AppIsFree", "open"), timeout=30, what="AppIsFree")
    assert p["status"]["phase"] == "Failed"
    assert "its checkout was canceled at the gateway and nothing was charged" in condition(p)["message"]  # type: ignore[index]
    assert gateway.sessions[open_session].state == "canceled", "the buyer can no longer pay for nothing"
    buy(objects, namespace, shop, name="late")
    wait_for(lambda: reason_is(objects, namespace, "AppIsFree", "late"), timeout=30, what="AppIsFree")

    # Reconciled again and again: no error, no new warning, the paid one still Verified and Ready.
    for _ in range(2):
        stamps = {
            name: request_reconcile(objects, "payments", name, namespace) for name in ("paid", "open", "late")
        }
        for name, stamp in stamps.items():
            wait_for(
                lambda name=name, stamp=stamp: handled(objects, "payments", name, stamp, namespace),
                timeout=30,
                what=f"{name} looked at",
            )
    paid = objects.get("payments", "paid", namespace)
    assert paid["status"]["phase"] == "Verified"  # type: ignore[index]
    assert ready(paid)
    assert reason_is(objects, namespace, "AppIsFree", "open"), (
        "a terminal Payment keeps the reason it ended with"
    )
    for name in ("paid", "open", "late"):
        warnings = [r for t, r, _ in objects.events_for(name, namespace) if t == "Warning"]
        assert warnings == ([] if name == "paid" else ["AppIsFree"]), (name, warnings)


def test_an_unreadable_source_key_keeps_the_app_locked_without_an_error(
    objects: Objects, operator: OperatorProcess, shop: str, namespace: str
) -> None:
    since = operator.log_size()
    objects.patch(
        "marketsources", shop, {"spec": {"payment": {"publicKey": "-----BEGIN PUBLIC KEY-----\nbroken"}}}
    )
    install(objects, namespace, "notes", source=shop, app="notes")
    wait_for(lambda: app_phase(objects, namespace) == "AwaitingPayment", timeout=30, what="AwaitingPayment")
    stamp = request_reconcile(objects, "appinstalls", "notes", namespace)
    wait_for(
        lambda: handled(objects, "appinstalls", "notes", stamp, namespace), timeout=30, what="looked again"
    )
    assert condition(objects.get("appinstalls", "notes", namespace))["reason"] == "PaymentRequired"  # type: ignore[index]
    assert "Traceback" not in operator.log(since), "the licence gate reports a bad key, it does not raise"
