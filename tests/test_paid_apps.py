"""Paid apps: an AppInstall waits for a verified receipt, proceeds at once when paid, stops on refund."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes import client

from kubemart.domain import receipts
from support.apps import handled, install, request_reconcile, running
from support.cluster import Cluster
from support.gateway import Gateway
from support.kube import Objects, condition
from support.wait import wait_for
from test_payments import buy, phase_is


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
