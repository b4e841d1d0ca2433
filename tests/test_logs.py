"""The operator's logs with KUBEMART_LOG_FORMAT=json: one JSON object a line, objects named, no secrets."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client

from kubemart.domain.webhooks import signature_header
from support.apps import install, running
from support.cluster import Cluster
from support.gateway import Gateway
from support.kube import Objects
from support.operator_process import OperatorProcess
from support.wait import wait_for
from test_payments import buy, phase_is


def records(op: OperatorProcess) -> list[dict[str, Any]]:
    out = []
    for line in op.log().splitlines():
        if line.strip():
            out.append(json.loads(line))  # every line is one JSON object, or this fails
    return out


def test_json_logs_name_objects_and_never_show_secrets(
    cluster: Cluster,
    k8s: client.ApiClient,
    objects: Objects,
    shop: str,
    gateway: Gateway,
    namespace: str,
    operator_session: OperatorProcess,
    tmp_path: Path,
) -> None:
    values_secret = f"values-secret-{uuid.uuid4().hex}"
    client.CoreV1Api(k8s).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="blog-values"),
            string_data={"values.yaml": f"message: {values_secret}\n"},
        ),
    )
    # A second operator would fight the shared one: stop it, and bring it back after.
    operator_session.stop()
    op = OperatorProcess(
        cluster,
        extra_env={"KUBEMART_LOG_FORMAT": "json", "KUBEMART_CHART_CACHE_DIR": str(tmp_path / "charts")},
    )
    op.start()
    try:
        install(
            objects,
            namespace,
            "blog",
            source=shop,
            app="blog",
            valuesFrom=[{"kind": "Secret", "name": "blog-values"}],
        )
        buy(objects, namespace, shop)
        wait_for(lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=60, what="checkout open")
        session = gateway.only_session().id
        # A webhook with a wrong signature is refused (and, since anyone can send one, not logged).
        body = json.dumps({"session": session}).encode()
        refused = httpx.post(
            f"http://127.0.0.1:{op.webhook_port}/webhooks/payment",
            content=body,
            headers={"Kubemart-Signature": signature_header(b"not-the-secret", body, int(time.time()))},
            timeout=10,
        )
        assert refused.status_code == 401
        gateway.set_state(session, "paid")
        paid = wait_for(lambda: phase_is(objects, namespace, "Verified"), timeout=60, what="Verified")
        install(objects, namespace, "notes", source=shop, app="notes")
        wait_for(lambda: running(objects, namespace, "blog"), timeout=120, what="blog Running")
        wait_for(lambda: running(objects, namespace, "notes"), timeout=120, what="notes Running")
        receipt_secret = client.CoreV1Api(k8s).read_namespaced_secret(
            paid["status"]["receiptSecretRef"]["name"], namespace
        )
        receipt = json.loads(base64.b64decode(receipt_secret.data["receipt.json"]))
    finally:
        op.stop()
        operator_session.start()

    log = op.log()
    lines = records(op)
    assert len(lines) > 10
    for r in lines:
        assert {"time", "level", "logger", "message"} <= set(r), r
    assert any(
        r["message"].startswith("kubemart operator") and r["message"].endswith("started") for r in lines
    )

    # Every helm command ran for an app, and its lines name that app.
    helm = [r for r in lines if r["logger"] == "kubemart.helm" and f"--namespace {namespace}" in r["message"]]
    assert {r.get("name") for r in helm} == {"blog", "notes"}
    assert all((r.get("kind"), r.get("namespace")) == ("AppInstall", namespace) for r in helm)
    # Unauthenticated webhooks are counted (kubemart_webhooks_total), never logged above debug: no flood.
    assert not [r for r in lines if r["logger"] == "kubemart.webhooks"]

    # No secret, anywhere: not the values from the Secret, the gateway's token, the webhook secret, the receipt.
    for secret in (values_secret, gateway.token, "whsec", receipt["signature"], receipt["payload"]):
        assert secret not in log
    assert "Traceback" not in log
