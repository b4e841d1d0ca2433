"""Payment reconcile: quote from the catalog, open a checkout, follow it, verify the receipt.

The price is copied from the MarketApp into status.quote, never taken from the user. The session
is followed by polling with backoff (webhooks only make the next look happen sooner). Verified is
reached only through `domain.receipts`: a signature that checks out against the source's key, and
claims that match this Payment. The receipt is then kept in a Secret owned by the Payment.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lightkube.resources.core_v1 import Secret
from pydantic import ValidationError

from kubemart.adapters.gateway import Gateway, GatewayError
from kubemart.adapters.kube import (
    Body,
    Kube,
    KubeError,
    MarketAppResource,
    MarketSourceResource,
    PaymentResource,
)
from kubemart.domain import receipts
from kubemart.domain.catalog import object_name
from kubemart.domain.conditions import Summary
from kubemart.domain.payments import TERMINAL, IllegalTransition, PaymentEvent, next_phase
from kubemart.domain.triggers import requested_at
from kubemart.models.marketapp import MarketApp
from kubemart.models.marketsource import MarketSource
from kubemart.models.payment import Payment, PaymentPhase, PaymentStatus, ReceiptReference
from kubemart.models.resource import API_VERSION
from kubemart.runtime.controller import Key, Result, backoff
from kubemart.runtime.settings import Settings
from kubemart.services.events import EventRecorder
from kubemart.services.problems import Problem
from kubemart.services.status import write_status

SESSION_EVENTS = {
    "paid": PaymentEvent.SESSION_PAID,
    "failed": PaymentEvent.SESSION_FAILED,
    "expired": PaymentEvent.SESSION_EXPIRED,
    "canceled": PaymentEvent.SESSION_CANCELED,
    "refunded": PaymentEvent.REFUNDED,
}
RECEIPT_KEY = "receipt.json"
REFUND_CHECK_SECONDS = 300.0


@dataclass
class Payments:
    kube: Kube
    settings: Settings
    events: EventRecorder
    remember: Any = None
    polls: dict[Key, int] = field(default_factory=dict)

    async def reconcile(self, key: Key, body: Body) -> Result:
        if body["metadata"].get("deletionTimestamp"):
            return Result()
        try:
            payment = Payment.model_validate(body)
        except ValidationError as exc:
            await self._write(
                body, None, Summary(False, "InvalidSpec", f"The spec cannot be read: {exc}", stalled=True)
            )
            return Result()
        status = payment.status.model_copy(deep=True)
        status.last_handled_reconcile_at = requested_at(body) or status.last_handled_reconcile_at
        phase = status.phase or PaymentPhase.PENDING
        status.phase = phase
        if phase in TERMINAL:
            await self._write(body, status, self._summary(status))
            return Result()
        if phase is not PaymentPhase.PENDING and not status.session_id:
            # Only the operator writes status, and it never leaves a session out: someone wrote it by hand.
            status.phase = PaymentPhase.FAILED
            message = f"status.phase {phase.value} was not written by the operator; nothing is unlocked. Create a new Payment."
            await self._write(body, status, Summary(False, "StatusTampered", message, stalled=True))
            self.events.warning(body, "StatusTampered", message)
            return Result()
        try:
            return await self._advance(key, body, payment, status)
        except Problem as problem:
            polls = self.polls.get(key, 0) + 1
            self.polls[key] = polls
            if await self._write(
                body, status, Summary(False, problem.reason, problem.message, stalled=problem.stalled)
            ):
                self.events.warning(body, problem.reason, problem.message)
            return Result() if problem.stalled else Result(requeue_after=backoff(polls, cap=60.0))

    async def _advance(self, key: Key, body: Body, payment: Payment, status: PaymentStatus) -> Result:
        ns, name = key
        source = await self._get(MarketSourceResource, payment.spec.source, "MarketSource")
        app = await self._get(MarketAppResource, object_name(payment.spec.source, payment.spec.app), "App")
        source_m, app_m = MarketSource.model_validate(source), MarketApp.model_validate(app)
        price = app_m.spec.price
        if price is None:
            status.phase = next_phase(status.phase or PaymentPhase.PENDING, PaymentEvent.APP_IS_FREE)
            message = f"{payment.spec.app} is free: install it without a Payment."
            await self._write(body, status, Summary(False, "AppIsFree", message, stalled=True))
            self.events.warning(body, "AppIsFree", message)
            return Result()
        gateway = source_m.spec.payment
        if gateway is None:
            raise Problem(
                "NoPaymentGateway",
                f"MarketSource {payment.spec.source} sells {payment.spec.app} but declares no payment gateway (spec.payment).",
                stalled=True,
            )
        secret = await self.kube.read_secret_data(gateway.secret_ref.name, gateway.secret_ref.namespace)
        if not secret or not secret.get("token"):
            raise Problem(
                "GatewaySecretNotFound",
                f"Secret {gateway.secret_ref.namespace}/{gateway.secret_ref.name} with the gateway's token does not exist.",
            )
        developer = app_m.spec.developer.name if app_m.spec.developer else None
        try:
            async with Gateway(gateway.url, secret["token"]) as gw:
                if status.phase is PaymentPhase.PENDING:
                    status.quote = price  # from the catalog, never from the user
                    view = await gw.create_session(
                        {
                            "source": payment.spec.source,
                            "app": payment.spec.app,
                            "developer": developer,
                            "amount": price.amount,
                            "currency": price.currency,
                            "buyer": ns,
                            "reference": f"{ns}/{name}/{body['metadata']['uid']}",
                        }
                    )
                    status.session_id = view.session
                    status.checkout_url = view.checkout_url
                    status.expires_at = (
                        datetime.fromisoformat(view.expires_at.replace("Z", "+00:00"))
                        if view.expires_at
                        else None
                    )
                    status.phase = next_phase(PaymentPhase.PENDING, PaymentEvent.SESSION_CREATED)
                    self.events.normal(
                        body, "CheckoutOpened", f"Pay {price.amount} {price.currency} at {view.checkout_url}."
                    )
                if status.phase is PaymentPhase.VERIFIED and not await self._receipt_holds(
                    body, status, gateway.public_key, developer, payment, ns
                ):
                    status.phase = PaymentPhase.FAILED
                    message = (
                        "status.phase Verified is not backed by a verified receipt; nothing is unlocked."
                    )
                    await self._write(body, status, Summary(False, "StatusTampered", message, stalled=True))
                    self.events.warning(body, "StatusTampered", message)
                    return Result()
                if status.phase is PaymentPhase.AWAITING_PAYMENT or status.phase is PaymentPhase.VERIFIED:
                    view = await gw.session(str(status.session_id))
                    event = SESSION_EVENTS.get(view.state)
                    if event is not None and not (
                        status.phase is PaymentPhase.VERIFIED and event is PaymentEvent.SESSION_PAID
                    ):
                        status.phase = self._step(body, status.phase, event)
                if status.phase is PaymentPhase.PAID:
                    receipt = await gw.receipt(str(status.session_id))
                    status.phase = await self._verify(
                        body, status, receipt, gateway.public_key, developer, payment, ns
                    )
        except GatewayError as err:
            raise Problem(
                err.reason,
                err.message + " The Payment keeps its state and tries again.",
                stalled=not err.retryable,
            ) from err
        if status.phase is not PaymentPhase.AWAITING_PAYMENT:
            self.polls.pop(key, None)
        if status.phase is PaymentPhase.REFUNDED and status.receipt_secret_ref is not None:
            # The receipt is the licence: without it nothing is unlocked, whatever the status says.
            await self.kube.delete(Secret, status.receipt_secret_ref.name, ns)
            status.receipt_secret_ref = None
        await self._write(body, status, self._summary(status))
        if status.phase is PaymentPhase.AWAITING_PAYMENT:
            polls = self.polls.get(key, 0) + 1
            self.polls[key] = polls
            return Result(requeue_after=backoff(polls, base=1.0, cap=30.0))
        if status.phase is PaymentPhase.VERIFIED:
            return Result(requeue_after=REFUND_CHECK_SECONDS)
        return Result()

    def _step(self, body: Body, phase: PaymentPhase, event: PaymentEvent) -> PaymentPhase:
        try:
            after = next_phase(phase, event)
        except IllegalTransition as exc:
            self.events.warning(body, "IllegalTransition", str(exc))
            return phase
        if after is not phase:
            self.events.normal(body, after.value, f"The payment is now {after.value}.")
        return after

    async def _verify(
        self,
        body: Body,
        status: PaymentStatus,
        receipt: dict[str, Any],
        public_key: str,
        developer: str | None,
        payment: Payment,
        namespace: str,
    ) -> PaymentPhase:
        assert status.quote is not None
        assert status.session_id is not None
        expected = receipts.Expected(
            source=payment.spec.source,
            app=payment.spec.app,
            developer=developer,
            buyer=namespace,
            amount=status.quote.amount,
            currency=status.quote.currency,
            session=status.session_id,
        )
        try:
            claims = receipts.verify(receipt, receipts.public_key_from(public_key))
            receipts.check(claims, expected)
        except receipts.InvalidReceipt as exc:
            self.events.warning(body, "ReceiptRejected", f"The receipt was rejected: {exc}.")
            return next_phase(PaymentPhase.PAID, PaymentEvent.RECEIPT_REJECTED)
        secret_name = f"{body['metadata']['name']}-receipt"
        await self.kube.apply_object(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubemart.io/receipt",
                "metadata": {
                    "name": secret_name,
                    "namespace": namespace,
                    "labels": {
                        "kubemart.io/source": payment.spec.source,
                        "kubemart.io/app": payment.spec.app,
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": API_VERSION,
                            "kind": "Payment",
                            "name": body["metadata"]["name"],
                            "uid": body["metadata"]["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "stringData": {RECEIPT_KEY: json.dumps(receipt)},
            },
            namespace=namespace,
        )
        status.receipt_secret_ref = ReceiptReference(name=secret_name)
        self.events.normal(
            body,
            "Verified",
            f"The receipt for {payment.spec.app} verified; it is kept in Secret {secret_name}.",
        )
        return next_phase(PaymentPhase.PAID, PaymentEvent.RECEIPT_VERIFIED)

    async def _receipt_holds(
        self,
        body: Body,
        status: PaymentStatus,
        public_key: str,
        developer: str | None,
        payment: Payment,
        namespace: str,
    ) -> bool:
        """The receipt Secret this Payment owns still verifies and matches: the phase is earned."""
        ref = status.receipt_secret_ref
        if ref is None or status.quote is None or status.session_id is None:
            return False
        secret = await self.kube.get(Secret, ref.name, namespace)
        owners = ((secret or {}).get("metadata") or {}).get("ownerReferences") or []
        if not secret or not any(o.get("uid") == body["metadata"]["uid"] for o in owners):
            return False
        try:
            receipt = json.loads(base64.b64decode((secret.get("data") or {}).get(RECEIPT_KEY, "")))
            claims = receipts.verify(receipt, receipts.public_key_from(public_key))
            receipts.check(
                claims,
                receipts.Expected(
                    payment.spec.source,
                    payment.spec.app,
                    developer,
                    namespace,
                    status.quote.amount,
                    status.quote.currency,
                    status.session_id,
                ),
            )
        except (receipts.InvalidReceipt, ValueError):
            return False
        return True

    @staticmethod
    def _summary(status: PaymentStatus) -> Summary:
        phase = status.phase or PaymentPhase.PENDING
        quote = f"{status.quote.amount} {status.quote.currency}" if status.quote else "the price"
        if phase is PaymentPhase.VERIFIED:
            return Summary(True, "Verified", f"Paid {quote}; the receipt verified.")
        if phase is PaymentPhase.AWAITING_PAYMENT:
            until = f" before {status.expires_at.isoformat()}" if status.expires_at else ""
            return Summary(
                False, "AwaitingPayment", f"Pay {quote} at {status.checkout_url}{until}.", reconciling=True
            )
        if phase is PaymentPhase.PAID:
            return Summary(None, "Paid", "Paid; checking the receipt.", reconciling=True)
        if phase is PaymentPhase.PENDING:
            return Summary(None, "Pending", "Opening a checkout session.", reconciling=True)
        return Summary(
            False,
            phase.value,
            f"The payment is {phase.value}; create a new Payment to buy the app.",
            stalled=True,
        )

    async def _get(self, res: Any, name: str, what: str) -> Body:
        try:
            found = await self.kube.get(res, name)
        except KubeError as err:
            raise Problem("ApiUnavailable", f"Reading {name} failed: {err.message}") from err
        if found is None:
            raise Problem(f"{what}NotFound", f"{what} {name} does not exist; check spec.source and spec.app.")
        return found

    async def _write(self, body: Body, status: PaymentStatus | None, summary: Summary) -> bool:
        status = status or PaymentStatus.model_validate(body.get("status") or {})
        return await write_status(self.kube, PaymentResource, body, status, summary, remember=self.remember)
