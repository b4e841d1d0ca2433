"""Payments against a gateway of the tests' own on 127.0.0.1: quote, checkout, receipt, keys, failures."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from kubemart.domain import webhooks
from kubemart.domain.catalog import object_name
from support.apps import handled, request_reconcile
from support.gateway import Gateway, encode_key
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


def reason_is(objects: Objects, namespace: str, reason: str, name: str = "buy") -> dict[str, Any] | None:
    p = objects.get("payments", name, namespace)
    return p if (condition(p) or {}).get("reason") == reason else None


def creates(gateway: Gateway) -> int:
    return sum(1 for method, path in gateway.requests if (method, path) == ("POST", "/sessions"))


@pytest.fixture
def gateway(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    """The tests' gateway; `indirect` parameters choose its key format and kid."""
    gw = Gateway(**getattr(request, "param", {}))
    yield gw
    gw.close()


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


@pytest.mark.parametrize(
    "gateway", [{"key_format": "spki"}, {"key_format": "pem"}], indirect=True, ids=["SPKI base64", "PEM"]
)
def test_a_key_in_another_documented_format_pays_and_verifies(
    objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    gateway.set_state(gateway.only_session().id, "paid")
    assert ready(wait_for(lambda: phase_is(objects, namespace, "Verified"), timeout=60, what="Verified"))


def test_an_unreadable_key_opens_no_checkout_until_it_is_fixed(
    objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    payment = {"payment": {"publicKey": "this is not an Ed25519 key in any format at all"}}
    objects.patch("marketsources", shop, {"spec": payment})
    buy(objects, namespace, shop)
    p = wait_for(
        lambda: reason_is(objects, namespace, "InvalidPublicKey"), timeout=30, what="InvalidPublicKey"
    )
    message = condition(p)["message"]  # type: ignore[index]
    assert "no checkout is opened" in message
    assert "PEM" in message, "the message names the formats that are accepted"
    assert condition(p, "Stalled") is not None
    assert (p["status"].get("phase"), p["status"].get("sessionID")) == ("Pending", None)
    assert creates(gateway) == 0, "no money is asked for that no receipt could be verified against"

    objects.patch("marketsources", shop, {"spec": {"payment": {"publicKey": gateway.public_key}}})
    # Stalled Payments wait for a change, not a timer: the source's change wakes them.
    wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="a checkout once fixed"
    )
    assert creates(gateway) == 1


def test_a_long_payment_name_keeps_its_receipt(
    k8s: client.ApiClient, objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    name = "buy-" + "n" * 240  # "<name>-receipt" would be 252 + 8 characters: too long for a Secret
    buy(objects, namespace, shop, name=name)
    wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment", name), timeout=30, what="AwaitingPayment"
    )
    gateway.set_state(gateway.only_session().id, "paid")
    p = wait_for(lambda: phase_is(objects, namespace, "Verified", name), timeout=60, what="Verified")
    secret = p["status"]["receiptSecretRef"]["name"]
    assert len(secret) <= 253
    assert secret.endswith("-receipt")
    assert client.CoreV1Api(k8s).read_namespaced_secret(secret, namespace).type == "kubemart.io/receipt"
    assert creates(gateway) == 1


def test_a_receipt_that_cannot_be_stored_opens_no_second_session(
    k8s: client.ApiClient, objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    # Someone took the receipt Secret's name with a Secret of another type (a type cannot change).
    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="buy-receipt"), type="Opaque")
    )
    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    gateway.set_state(gateway.only_session().id, "paid")
    p = wait_for(
        lambda: reason_is(objects, namespace, "ReceiptNotStored"), timeout=60, what="ReceiptNotStored"
    )
    assert p["status"]["phase"] == "Paid", "the Payment keeps what it knows"
    assert "tries again" in condition(p)["message"]  # type: ignore[index]
    core.delete_namespaced_secret("buy-receipt", namespace)
    request_reconcile(objects, "payments", "buy", namespace)
    wait_for(
        lambda: phase_is(objects, namespace, "Verified"), timeout=60, what="Verified once it can be kept"
    )
    assert creates(gateway) == 1, "one session, however often the receipt could not be kept"


def test_a_catalog_entry_that_is_not_the_sources_sells_nothing(
    objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    # A MarketApp under the name the source's entry for `ghost` would have, written by someone else.
    ghost = object_name(shop, "ghost")
    objects.create(
        "marketapps",
        {
            "kind": "MarketApp",
            "metadata": {"name": ghost},
            "spec": {"source": shop, "app": "ghost", "price": {"amount": "0.01", "currency": "USD"}},
        },
    )
    try:
        buy(objects, namespace, shop, app="ghost")
        p = wait_for(
            lambda: reason_is(objects, namespace, "CatalogEntryMismatch"),
            timeout=30,
            what="CatalogEntryMismatch",
        )
        assert f"MarketApp {ghost} is not MarketSource {shop}'s entry" in condition(p)["message"]  # type: ignore[index]
        assert (p["status"].get("quote"), creates(gateway)) == (None, 0), (
            "no price is taken from it, no checkout"
        )
    finally:
        objects.delete("marketapps", ghost)


@pytest.mark.parametrize("gateway", [{"kid": "2026-05"}], indirect=True)
def test_a_gateway_rotating_its_key_keeps_old_receipts_valid(
    objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    buy(objects, namespace, shop, name="before")
    wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment", "before"), timeout=30, what="AwaitingPayment"
    )
    gateway.set_state(gateway.only_session().id, "paid")
    wait_for(lambda: phase_is(objects, namespace, "Verified", "before"), timeout=60, what="Verified")

    old = gateway.rotate_key("2026-11")
    retired = [{"keyID": "2026-05", "publicKey": encode_key(old, "pem")}]
    rotated = {"publicKey": gateway.public_key, "keyID": "2026-11", "retiredKeys": retired}
    objects.patch("marketsources", shop, {"spec": {"payment": rotated}})
    stamp = request_reconcile(objects, "payments", "before", namespace)
    p = wait_for(
        lambda: handled(objects, "payments", "before", stamp, namespace), timeout=30, what="looked again"
    )
    assert p["status"]["phase"] == "Verified"
    assert ready(p), "a receipt signed by the retired key still holds"

    buy(objects, namespace, shop, name="after")
    p = wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment", "after"), timeout=30, what="AwaitingPayment"
    )
    gateway.set_state(p["status"]["sessionID"], "paid")
    p = wait_for(lambda: phase_is(objects, namespace, "Verified", "after"), timeout=60, what="Verified")
    stored = objects.core.read_namespaced_secret(p["status"]["receiptSecretRef"]["name"], namespace)
    receipt = json.loads(base64.b64decode(stored.data["receipt.json"]))
    assert json.loads(base64.urlsafe_b64decode(receipt["protected"] + "=="))["kid"] == "2026-11"
