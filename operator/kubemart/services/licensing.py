"""The gate on paid apps: a licence is a verified receipt, nothing else.

The gate does not read a Payment's phase (a user can write their own status): it looks for a
receipt Secret owned by a Payment in the app's namespace, verifies its signature against the
source's key and checks that it was issued for this source, app, buyer namespace and developer.
A refund deletes the receipt Secret, so it revokes the licence however the status is edited.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from lightkube.resources.core_v1 import Secret

from kubemart.adapters.kube import Kube, PaymentResource
from kubemart.domain import receipts
from kubemart.models.marketapp import MarketApp
from kubemart.models.marketsource import MarketSource

RECEIPT_KEY = "receipt.json"


@dataclass(frozen=True)
class License:
    payment: str
    secret: str


@dataclass(frozen=True)
class Gate:
    license: License | None
    checkout_url: str | None = None
    """Where an open checkout for this app can be paid, to point the user at."""


async def find_license(
    kube: Kube, namespace: str, source: MarketSource, app: MarketApp, source_name: str
) -> Gate:
    gateway = source.spec.payment
    if gateway is None:
        return Gate(None)
    key = receipts.public_key_from(gateway.public_key)
    developer = app.spec.developer.name if app.spec.developer else None
    checkout = None
    for payment in await kube.list(PaymentResource, namespace=namespace):
        spec = payment.get("spec") or {}
        if (spec.get("source"), spec.get("app")) != (source_name, app.spec.app):
            continue
        status = payment.get("status") or {}
        if status.get("phase") == "AwaitingPayment":
            checkout = status.get("checkoutURL") or checkout
        ref = (status.get("receiptSecretRef") or {}).get("name")
        if not ref:
            continue
        secret = await kube.get(Secret, ref, namespace)
        if secret is None:
            continue
        owners = secret["metadata"].get("ownerReferences") or []
        if not any(o.get("uid") == payment["metadata"]["uid"] and o.get("kind") == "Payment" for o in owners):
            continue
        try:
            receipt = json.loads(base64.b64decode((secret.get("data") or {}).get(RECEIPT_KEY, "")))
            claims = receipts.verify(receipt, key)
            receipts.check_license(
                claims, source=source_name, app=app.spec.app, buyer=namespace, developer=developer
            )
        except (receipts.InvalidReceipt, ValueError):
            continue
        return Gate(License(payment=payment["metadata"]["name"], secret=ref))
    return Gate(None, checkout)
