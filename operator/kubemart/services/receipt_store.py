"""The receipt Secret: where a verified receipt is kept, and how it is read back (docs/payment-gateway.md).

Secret `<payment>-receipt` (hash-shortened past 253 characters), type `kubemart.io/receipt`, key
`receipt.json` holding the JWS as the gateway sent it, controlled by its Payment. Whoever may
write Secrets in the namespace can change it, so what is read back is untrusted again: bounded,
and it unlocks only after its signature and claims are checked anew (services/licensing.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lightkube.resources.core_v1 import Secret

from kubemart.adapters.kube import Body, Kube
from kubemart.domain import bounded_json
from kubemart.domain.payments import label_value, receipt_secret_name
from kubemart.models.resource import API_VERSION

RECEIPT_KEY = "receipt.json"
SECRET_TYPE = "kubemart.io/receipt"
MAX_RECEIPT_BYTES = 64 * 1024


def receipt_secret(payment: Body, *, source: str, app: str, receipt: dict[str, Any]) -> Body:
    """The Secret keeping `receipt` for `payment` (pure)."""
    meta = payment["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SECRET_TYPE,
        "metadata": {
            "name": receipt_secret_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {"kubemart.io/source": label_value(source), "kubemart.io/app": label_value(app)},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Payment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "stringData": {RECEIPT_KEY: json.dumps(receipt, separators=(",", ":"))},
    }


async def store(kube: Kube, secret: Body) -> str:
    """Write the receipt Secret (server-side apply); its name. KubeError when the API refuses it."""
    await kube.apply_object(secret, namespace=secret["metadata"]["namespace"])
    return str(secret["metadata"]["name"])


async def load(kube: Kube, name: str, namespace: str, *, owner_uid: str) -> dict[str, Any] | None:
    """The receipt kept in Secret `name` if a Payment with `owner_uid` controls it; None otherwise."""
    secret = await kube.get(Secret, name, namespace)
    if secret is None:
        return None
    owners = (secret.get("metadata") or {}).get("ownerReferences") or []
    if not any(o.get("uid") == owner_uid and o.get("kind") == "Payment" for o in owners):
        return None
    encoded = (secret.get("data") or {}).get(RECEIPT_KEY, "")
    if not isinstance(encoded, str) or len(encoded) > MAX_RECEIPT_BYTES * 2:
        return None
    try:
        receipt = bounded_json.loads(base64.b64decode(encoded), max_bytes=MAX_RECEIPT_BYTES, max_depth=4)
    except (ValueError, binascii.Error):
        return None
    return receipt if isinstance(receipt, dict) else None
