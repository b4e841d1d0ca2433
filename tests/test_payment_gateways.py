"""What a gateway answers, and who may call the webhook: against the real API server and operator.

A gateway refusing a checkout ends the Payment; one answering garbage is retried for the same
session; the webhook endpoint answers strangers without reading anything from the API server.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from kubemart.domain import webhooks
from support.apps import create_source, handled, request_reconcile
from support.cluster import Cluster
from support.gateway import Gateway
from support.kube import Objects, condition, ready
from support.operator_process import OperatorProcess
from support.repo import ChartRepo
from support.wait import wait_for
from test_payments import PAID, buy, creates, phase_is, reason_is


def test_a_gateway_refusing_the_checkout_ends_the_payment(
    objects: Objects, shop: str, gateway: Gateway, namespace: str
) -> None:
    gateway.create_reply = (422, b'{"error": "notes is not sold in your region"}')
    buy(objects, namespace, shop)
    p = wait_for(lambda: reason_is(objects, namespace, "CheckoutRefused"), timeout=30, what="CheckoutRefused")
    message = condition(p)["message"]  # type: ignore[index]
    assert p["status"]["phase"] == "Failed"
    assert condition(p, "Stalled") is not None
    assert "(422): notes is not sold in your region" in message
    assert "Nothing was charged" in message
    assert "tries again" not in message, "it does not say it retries: it does not"
    stamp = request_reconcile(objects, "payments", "buy", namespace)
    wait_for(lambda: handled(objects, "payments", "buy", stamp, namespace), timeout=30, what="looked again")
    assert creates(gateway) == 1, "a refused checkout is not asked for again"


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"<html>Created</html>", id="not JSON"),
        pytest.param(b'{"id": "cs_1", "url": "https://pay.example/cs_1"}', id="JSON without session"),
        pytest.param(b'{"session": 1, "state": "open", "checkoutURL": 2}', id="wrong types"),
    ],
)
def test_a_garbled_session_create_is_retried_for_the_same_session(
    objects: Objects, operator: OperatorProcess, shop: str, gateway: Gateway, namespace: str, reply: bytes
) -> None:
    since = operator.log_size()
    gateway.create_reply = (201, reply)  # the gateway opened a session, but its answer cannot be read
    buy(objects, namespace, shop)
    p = wait_for(
        lambda: reason_is(objects, namespace, "GatewayProtocolError"), timeout=30, what="GatewayProtocolError"
    )
    assert "tries again" in condition(p)["message"]  # type: ignore[index]
    assert p["status"]["phase"] == "Pending"
    for _ in range(2):
        stamp = request_reconcile(objects, "payments", "buy", namespace)
        wait_for(
            lambda s=stamp: handled(objects, "payments", "buy", s, namespace), timeout=30, what="retried"
        )
    gateway.create_reply = None
    request_reconcile(objects, "payments", "buy", namespace)
    p = wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")

    keys = {headers.get("Idempotency-Key") for headers, _ in gateway.create_requests}
    assert len(gateway.create_requests) >= 4
    assert keys == {f"kubemart-payment-{p['metadata']['uid']}"}, "every attempt asks for the same session"
    assert p["status"]["sessionID"] == gateway.only_session().id, "never a second session"
    assert "Traceback" not in operator.log(since)


# --- the webhook endpoint --------------------------------------------------------------------------

_READ = re.compile(
    r'^apiserver_request_total\{[^}]*resource="(secrets|marketsources|payments)"[^}]*verb="(GET|LIST)"'
)


def api_reads(cluster: Cluster) -> float | None:
    """GETs and LISTs of Secrets, MarketSources and Payments, as counted by the API server itself."""
    out = cluster.run("kubectl", "get", "--raw", "/metrics", check=False)
    if out.returncode != 0:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in out.stdout.splitlines() if _READ.match(line))


def test_unauthenticated_webhooks_get_401_and_cost_no_api_read(
    cluster: Cluster, objects: Objects, operator: OperatorProcess, shop: str, gateway: Gateway, namespace: str
) -> None:
    buy(objects, namespace, shop)
    wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
    session = gateway.only_session().id
    gateway.set_state(session, "paid")
    wait_for(
        lambda: phase_is(objects, namespace, "Verified"), timeout=60, what="Verified"
    )  # now quiet: 5 min polls
    url = f"http://127.0.0.1:{operator.webhook_port}/webhooks/payment"
    body = json.dumps({"session": session, "state": "refunded"}).encode()
    since, refused = operator.log_size(), operator.metric('kubemart_webhooks_total{result="unauthenticated"}')
    before = api_reads(cluster)
    forged = {webhooks.HEADER: webhooks.signature_header(b"guessed", body, int(time.time()))}
    with httpx.Client() as http:
        for i in range(100):
            assert http.post(url, content=body).status_code == 401
            assert http.post(url, content=body, headers=forged).status_code == 401
            assert http.post(url, content=b"{" * (i + 1)).status_code == 401, "401 before any 400"
    after = api_reads(cluster)
    if before is None or after is None:
        pytest.skip("the API server's metrics are not readable here")
    assert after - before < 30, "a stranger's webhook costs no API read (the old endpoint made 400 here)"
    assert operator.metric('kubemart_webhooks_total{result="unauthenticated"}') - refused == 300

    deep = b"[" * 8_000 + b"]" * 8_000
    signed = {webhooks.HEADER: webhooks.signature_header(b"whsec", deep, int(time.time()))}
    assert httpx.post(url, content=deep, headers=signed).status_code == 400
    assert httpx.post(url, content=b"[" * 30_000 + b"]" * 30_000).status_code == 413
    assert "Traceback" not in operator.log(since)
    assert phase_is(objects, namespace, "Verified"), "nothing a stranger sent changed anything"


@pytest.fixture
def own_operator(cluster: Cluster, shared_operator_paused: None, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, extra_env={"KUBEMART_CHART_CACHE_DIR": str(tmp_path / "charts")})
    op.extra_env["KUBEMART_WEBHOOK_PUBLIC_URL"] = f"http://127.0.0.1:{op.webhook_port}/webhooks/payment"
    op.start()
    yield op
    op.stop()


def test_the_webhook_url_is_sent_when_configured_and_its_webhooks_are_heard(
    k8s: client.ApiClient,
    objects: Objects,
    own_operator: OperatorProcess,
    chart_repo: ChartRepo,
    gateway: Gateway,
    namespace: str,
) -> None:
    name = f"t-shop-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(k8s)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        string_data={"token": gateway.token, "webhookSecret": "whsec-new"},
    )
    core.create_namespaced_secret("default", secret)
    chart_repo.add_chart("notes", "1.0.0", annotations=PAID)
    payment = {
        "url": gateway.url,
        "secretRef": {"name": name, "namespace": "default"},
        "publicKey": gateway.public_key,
    }
    create_source(objects, name, chart_repo.url, payment=payment)
    try:
        wait_for(lambda: ready(objects.get("marketsources", name)), timeout=60, what="shop Ready")
        buy(objects, namespace, name)
        wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="AwaitingPayment")
        session = gateway.only_session()
        assert session.request["webhookURL"] == own_operator.extra_env["KUBEMART_WEBHOOK_PUBLIC_URL"]
        gateway.set_state(session.id, "paid")
        assert gateway.notify(session.id, b"whsec-new") == 204
        wait_for(lambda: phase_is(objects, namespace, "Verified"), timeout=30, what="Verified")
    finally:
        objects.delete("marketsources", name)
        core.delete_namespaced_secret(name, "default")
