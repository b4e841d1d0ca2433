"""The gate on paid apps: a licence is a verified receipt, nothing else.

The gate does not read a Payment's phase (a user can write their own status): it looks for a
receipt Secret owned by a Payment in the app's namespace, verifies its signature against the
source's keys and checks that it was issued for this source, app, buyer namespace and developer.
A refund deletes the receipt Secret, so it revokes the licence however the status is edited.
The gate never raises on what a source or a tenant wrote: a key it cannot read keeps the app
locked and says why (`Gate.problem`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubemart.adapters.kube import Kube, PaymentResource
from kubemart.domain import receipts
from kubemart.models.marketapp import MarketApp
from kubemart.models.marketsource import MarketSource
from kubemart.services import receipt_store

RECEIPT_KEY = receipt_store.RECEIPT_KEY


@dataclass(frozen=True)
class License:
    payment: str
    secret: str


@dataclass(frozen=True)
class Gate:
    license: License | None
    checkout_url: str | None = None
    """Where an open checkout for this app can be paid, to point the user at."""
    problem: str | None = None
    """Why no licence can be checked at all (the source's keys cannot be read), for the app's condition."""


async def find_license(
    kube: Kube, namespace: str, source: MarketSource, app: MarketApp, source_name: str
) -> Gate:
    gateway = source.spec.payment
    if gateway is None:
        return Gate(None)
    try:
        keys = receipts.keyring(gateway.key_entries())
    except receipts.InvalidReceipt as exc:
        return Gate(
            None,
            problem=f"MarketSource {source_name}'s payment keys cannot be read ({exc}); "
            "no licence can be checked until an admin fixes spec.payment.publicKey",
        )
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
        if not ref or not isinstance(ref, str):
            continue
        receipt = await receipt_store.load(kube, ref, namespace, owner_uid=payment["metadata"]["uid"])
        if receipt is None:
            continue
        try:
            claims = receipts.verify(receipt, keys)
            receipts.check_license(
                claims, source=source_name, app=app.spec.app, buyer=namespace, developer=developer
            )
        except receipts.InvalidReceipt:
            continue
        return Gate(License(payment=payment["metadata"]["name"], secret=ref))
    return Gate(None, checkout)
