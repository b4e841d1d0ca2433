"""Payments against a gateway of the tests' own on 127.0.0.1: quote, checkout, receipt, failures."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from kubernetes import client

from kubemart.domain import webhooks
from support.apps import handled, request_reconcile
from support.gateway import Gateway
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.wait import wait_for

PAID = {"kubemart.io/price": "4.99 USD", "kubemart.io/developer": "Acme Apps", "kubemart.io/title": "Notes"}


def buy(objects: Objects, namespace: str, source: str, app: str = "notes", name: str = "buy") -> None:
    objects.create(
        "payments",
        {"kind": "Payment", "metadata": {"name": name}, "spec": {"source": source, "app": app}},
        namespace,
    )


def phase_is(objects: Objects, namespace: str, phase: str, name: str = "buy") -> dict[str, Any] | None:
    p = objects.get("payments", name, namespace)
    return p if p and (p.get("status") or {}).get("phase") == phase else None


def test_pay_and_the_receipt_is_verified_and_kept(
    k8s: client.ApiClient, objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    buy(objects, namespace, shop)
    p = wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    assert p["status"]["quote"] == {"amount": "4.99", "currency": "USD"}, "the price comes from the catalog"
    session = gateway.only_session()
    assert p["status"]["sessionID"] == session.id
    assert p["status"]["checkoutURL"].endswith(session.id)
    assert session.request["buyer"] == namespace
    assert condition(p)["reason"] == "AwaitingPayment"  # type: ignore[index]

    gateway.set_state(session.id, "paid")
    p = wait_for(lambda: phase_is(objects, namespace, "Verified"), timeout=60, what="Verified")
    assert ready(p)
    secret = client.CoreV1Api(k8s).read_namespaced_secret(p["status"]["receiptSecretRef"]["name"], namespace)
    assert secret.metadata.owner_references[0].uid == p["metadata"]["uid"]
    stored = json.loads(__import__("base64").b64decode(secret.data["receipt.json"]))
    assert set(stored) == {"protected", "payload", "signature"}


@pytest.mark.parametrize(
    ("state", "phase"), [("expired", "Expired"), ("failed", "Failed"), ("canceled", "Canceled")]
)
def test_sessions_that_end_unpaid_end_the_payment(
    objects: Objects, shop: str, gateway: Gateway, namespace: str, state: str, phase: str
) -> None:
    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    gateway.set_state(gateway.only_session().id, state)
    p = wait_for(lambda: phase_is(objects, namespace, phase), timeout=60, what=phase)
    assert condition(p, "Stalled") is not None
    assert not ready(p)


def test_a_gateway_that_is_down_is_waited_for(
    objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    gateway.down = True
    buy(objects, namespace, shop)
    cond = wait_for(
        lambda: (
            (c := condition(objects.get("payments", "buy", namespace)))
            and c["reason"] == "GatewayUnavailable"
            and c
        ),
        timeout=30,
        what="GatewayUnavailable",
    )
    assert "tries again" in cond["message"]
    asked = len(gateway.requests)
    gateway.down = False
    wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment"),
        timeout=90,
        what="AwaitingPayment once the gateway is back",
    )
    assert len(gateway.requests) - asked <= 3, "backoff, not a storm"


def test_a_slow_gateway_is_waited_for(objects: Objects, shop: str, gateway: Gateway, namespace: str) -> None:
    gateway.delay = 12  # longer than the operator's 10 s request timeout
    buy(objects, namespace, shop)
    cond = wait_for(
        lambda: (
            (c := condition(objects.get("payments", "buy", namespace)))
            and c["reason"] == "GatewayUnavailable"
            and c
        ),
        timeout=60,
        what="GatewayUnavailable",
    )
    assert "did not answer in time" in cond["message"]
    gateway.delay = 0
    wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment"),
        timeout=90,
        what="AwaitingPayment once it is quick again",
    )


def test_a_receipt_for_another_amount_is_rejected(
    objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    gateway.receipt_override = {"amount": "0.01"}
    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    gateway.set_state(gateway.only_session().id, "paid")
    p = wait_for(lambda: phase_is(objects, namespace, "Failed"), timeout=60, what="Failed")
    assert condition(p)["reason"] == "ReceiptRejected"  # type: ignore[index]
    wait_for(
        lambda: any(r == "ReceiptRejected" for _, r, _ in objects.events_for("buy", namespace)),
        timeout=10,
        what="a ReceiptRejected Event",
    )


@pytest.mark.parametrize("keep_session", [False, True], ids=["without a session", "with the real session"])
def test_a_forged_status_unlocks_nothing(
    objects: Objects, shop: str, gateway: Gateway, namespace: str, keep_session: bool
) -> None:
    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    forged: dict[str, Any] = {"phase": "Verified", "receiptSecretRef": {"name": "my-own-receipt"}}
    if not keep_session:
        forged["sessionID"] = None
    objects.custom.patch_namespaced_custom_object_status(
        "kubemart.io", "v1alpha1", namespace, "payments", "buy", {"status": forged}
    )
    p = wait_for(lambda: phase_is(objects, namespace, "Failed"), timeout=60, what="Failed")
    assert condition(p)["reason"] == "StatusTampered"  # type: ignore[index]


def test_a_free_app_is_refused(objects: Objects, shop: str, namespace: str) -> None:
    buy(objects, namespace, shop, app="blog")
    p = wait_for(lambda: phase_is(objects, namespace, "Failed"), timeout=30, what="Failed")
    assert condition(p)["reason"] == "AppIsFree"  # type: ignore[index]


def test_webhooks_are_hmac_verified_and_replays_have_no_second_effect(
    objects: Objects, operator: OperatorProcess, shop: str, gateway: Gateway, namespace: str
) -> None:
    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    session = gateway.only_session().id
    url = f"http://127.0.0.1:{operator.webhook_port}/webhooks/payment"
    body = json.dumps({"session": session, "state": "paid"}).encode()

    bad = httpx.post(
        url,
        content=body,
        headers={"Kubemart-Signature": webhooks.signature_header(b"wrong", body, int(time.time()))},
    )
    assert bad.status_code == 401
    unsigned = httpx.post(url, content=body)
    assert unsigned.status_code == 401
    assert phase_is(objects, namespace, "AwaitingPayment"), "a refused webhook changes nothing"

    gateway.set_state(session, "paid")
    signed = {"Kubemart-Signature": webhooks.signature_header(b"whsec", body, int(time.time()))}
    assert httpx.post(url, content=body, headers=signed).status_code == 204
    wait_for(lambda: phase_is(objects, namespace, "Verified"), timeout=30, what="Verified")
    assert httpx.post(url, content=body, headers=signed).status_code == 204, "a replay is accepted ..."
    stamp = request_reconcile(objects, "payments", "buy", namespace)
    wait_for(lambda: handled(objects, "payments", "buy", stamp, namespace), timeout=30, what="settled")
    verified_events = [r for _, r, _ in objects.events_for("buy", namespace) if r == "Verified"]
    assert verified_events == ["Verified"], "... and has no second effect"
