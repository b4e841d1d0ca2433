"""Payment reconcile: quote from the catalog, open a checkout, follow it, verify the receipt.

The price is copied from the MarketApp into status.quote, never taken from the user, and only
from a MarketApp that really is the entry of the Payment's source and app. No checkout opens
unless a receipt for it could be verified (the source's keys are readable): money is never taken
that cannot be honoured. A session is opened with an idempotency key derived from the Payment's
uid and recorded in status at once, so a retry asks for the same session, never a second one.
The session is followed by polling with backoff (webhooks only make the next look sooner).
Verified is reached only through `domain.receipts`; the receipt is kept in a Secret owned by the
Payment (services/receipt_store.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
from kubemart.domain.catalog import entry_belongs, object_name
from kubemart.domain.conditions import Summary
from kubemart.domain.gateway_protocol import SessionRequest, SessionState, clip, idempotency_key
from kubemart.domain.payments import (
    TERMINAL,
    IllegalTransition,
    PaymentEvent,
    after_session,
    next_phase,
    summary,
    terminal_summary,
)
from kubemart.domain.triggers import requested_at
from kubemart.models.marketapp import MarketApp
from kubemart.models.marketsource import MarketSource, PaymentGateway
from kubemart.models.payment import Payment, PaymentPhase, PaymentStatus, ReceiptReference
from kubemart.runtime.controller import Key, Result, backoff, key_of
from kubemart.runtime.settings import Settings
from kubemart.services import receipt_store
from kubemart.services.events import EventRecorder
from kubemart.services.problems import Problem
from kubemart.services.status import write_status
from kubemart.services.webhook_secrets import WebhookSecrets

P = PaymentPhase
REFUND_CHECK_SECONDS = 300.0
RETRIES = " The Payment keeps its state and the operator tries again with backoff."


@dataclass
class Purchase:
    """One reconcile's view of a Payment: what it buys, from whom, checked against which keys."""

    key: Key
    body: Body
    payment: Payment
    status: PaymentStatus
    app: MarketApp
    keys: receipts.Keyring

    @property
    def developer(self) -> str | None:
        return self.app.spec.developer.name if self.app.spec.developer else None

    def expected(self) -> receipts.Expected:
        assert self.status.quote is not None
        assert self.status.session_id is not None
        spec = self.payment.spec
        quote = self.status.quote
        namespace = self.key[0]
        return receipts.Expected(
            spec.source,
            spec.app,
            self.developer,
            namespace,
            quote.amount,
            quote.currency,
            self.status.session_id,
        )


@dataclass
class Payments:
    kube: Kube
    settings: Settings
    events: EventRecorder
    remember: Any = None
    polls: dict[Key, int] = field(default_factory=dict)
    webhook_secrets: WebhookSecrets = field(default_factory=WebhookSecrets)
    _source_of: dict[Key, str] = field(default_factory=dict)
    _secret_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    _generations: dict[str, int] = field(default_factory=dict)

    # --- what wakes whom (called from the watch handlers; memory only) -----------------------

    def forget(self, key: Key) -> None:
        self.polls.pop(key, None)
        self._source_of.pop(key, None)
        self.webhook_secrets.forget(key)

    def source_changed(self, body: Body, *, deleted: bool = False) -> list[Key]:
        """The Payments to look at again after a MarketSource event: its spec changed, or it is gone."""
        name, generation = body["metadata"]["name"], body["metadata"].get("generation", 0)
        if deleted:
            self._generations.pop(name, None)
            self.webhook_secrets.forget_source(name)
        elif self._generations.get(name) == generation:
            return []
        else:
            self._generations[name] = generation
        return [key for key, source in self._source_of.items() if source == name]

    def secret_changed(self, namespace: str, name: str) -> list[Key]:
        """The Payments whose source's gateway Secret this is (a new token or webhook secret)."""
        sources = {s for s, ref in self._secret_of.items() if ref == (namespace, name)}
        return [key for key, source in self._source_of.items() if source in sources]

    # --- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, key: Key, body: Body) -> Result:
        if body["metadata"].get("deletionTimestamp"):
            return Result()
        try:
            payment = Payment.model_validate(body)
        except ValidationError as exc:
            message = f"The spec cannot be read: {clip(str(exc), 300)}; fix it."
            await self._write(body, None, Summary(False, "InvalidSpec", message, stalled=True))
            return Result()
        status = payment.status.model_copy(deep=True)
        status.last_handled_reconcile_at = requested_at(body) or status.last_handled_reconcile_at
        phase = status.phase = status.phase or P.PENDING
        self._source_of[key] = payment.spec.source
        if phase in TERMINAL:
            self.webhook_secrets.forget(key)
            await self._write(
                body,
                status,
                terminal_summary(PaymentStatus.model_validate(body.get("status") or {}).conditions, status),
            )
            return Result()
        if phase is not P.PENDING and not status.session_id:
            # Only the operator writes status, and it never leaves a session out: someone wrote it by hand.
            message = f"status.phase {phase.value} was not written by the operator; nothing is unlocked. Create a new Payment."
            return await self._end(body, status, "StatusTampered", message)
        try:
            result = await self._advance(key, body, payment, status)
        except Problem as problem:
            polls = self.polls[key] = self.polls.get(key, 0) + 1
            summary = Summary(False, problem.reason, problem.message, stalled=problem.stalled)
            if await self._write(body, status, summary):
                self.events.warning(body, problem.reason, problem.message)
            result = Result() if problem.stalled else Result(requeue_after=backoff(polls, cap=60.0))
        self.webhook_secrets.follow(
            key, payment.spec.source, None if status.phase in TERMINAL else status.session_id
        )
        return result

    async def _advance(self, key: Key, body: Body, payment: Payment, status: PaymentStatus) -> Result:
        spec = payment.spec
        source_body = await self._get(MarketSourceResource, spec.source, "MarketSource")
        app_name = object_name(spec.source, spec.app)
        app_body = await self._get(MarketAppResource, app_name, "App")
        if not entry_belongs(
            app_body, source=spec.source, source_uid=source_body["metadata"]["uid"], app=spec.app
        ):
            raise Problem(
                "CatalogEntryMismatch",
                f"MarketApp {app_name} is not MarketSource {spec.source}'s entry for app {spec.app}, so nothing is "
                "sold through it; the operator looks again with backoff (a catalog sync writes the right entry).",
            )
        try:
            source, app = MarketSource.model_validate(source_body), MarketApp.model_validate(app_body)
        except ValidationError as exc:
            raise Problem(
                "InvalidCatalogEntry", f"The catalog cannot be read: {clip(str(exc), 300)}."
            ) from exc
        if app.spec.price is None and status.phase is P.PENDING:
            status.phase = next_phase(P.PENDING, PaymentEvent.APP_IS_FREE)
            return await self._end(
                body, status, "AppIsFree", f"{spec.app} is free: install it without a Payment."
            )
        gateway = source.spec.payment
        if gateway is None:
            raise Problem(
                "NoPaymentGateway",
                f"MarketSource {spec.source} sells {spec.app} but declares no payment gateway (spec.payment).",
                stalled=True,
            )
        try:
            keys = receipts.keyring(gateway.key_entries())
        except receipts.InvalidReceipt as exc:
            raise Problem(
                "InvalidPublicKey",
                f"MarketSource {spec.source}'s spec.payment keys cannot be read ({exc}), so no receipt could be "
                "verified: no checkout is opened and nothing is judged until an admin fixes the source.",
                stalled=True,
            ) from exc
        token = await self._token(spec.source, gateway)
        purchase = Purchase(key, body, payment, status, app, keys)
        try:
            async with Gateway(gateway.url, token) as gw:
                return await self._with_gateway(purchase, gw)
        except GatewayError as err:
            raise Problem(err.reason, err.message + RETRIES) from err

    async def _with_gateway(self, p: Purchase, gw: Gateway) -> Result:
        status, body = p.status, p.body
        if status.phase is P.PENDING:
            if await self._open_checkout(p, gw):
                return Result()
        elif p.app.spec.price is None and status.phase is P.AWAITING_PAYMENT:
            view = await gw.cancel(str(status.session_id))
            if view.state is SessionState.OPEN:
                raise GatewayError(
                    "GatewayProtocolError",
                    f"The payment gateway at {gw.url} did not cancel session {status.session_id} when asked.",
                    retryable=True,
                )
            if view.state not in (SessionState.PAID, SessionState.REFUNDED):
                status.phase = next_phase(P.AWAITING_PAYMENT, PaymentEvent.APP_IS_FREE)
                message = (
                    f"{p.payment.spec.app} became free before it was paid: its checkout was canceled at the "
                    "gateway and nothing was charged; install it without a Payment."
                )
                return await self._end(body, status, "AppIsFree", message)
            self._step(p, view.state)
        elif status.phase in (P.AWAITING_PAYMENT, P.VERIFIED):
            if status.phase is P.VERIFIED and not await self._receipt_holds(p):
                message = "status.phase Verified is not backed by a verified receipt; nothing is unlocked."
                return await self._end(body, status, "StatusTampered", message)
            self._step(p, (await gw.session(str(status.session_id))).state)
        if status.phase is P.PAID:
            verdict = await self._verify(p, gw)
            if verdict is not None:
                return verdict
        if status.phase is not P.AWAITING_PAYMENT:
            self.polls.pop(p.key, None)
        if status.phase is P.REFUNDED and status.receipt_secret_ref is not None:
            # The receipt is the licence: without it nothing is unlocked, whatever the status says.
            await self.kube.delete(Secret, status.receipt_secret_ref.name, p.key[0])
            status.receipt_secret_ref = None
        await self._write(body, status, summary(status))
        if status.phase is P.AWAITING_PAYMENT:
            polls = self.polls[p.key] = self.polls.get(p.key, 0) + 1
            return Result(requeue_after=backoff(polls, base=1.0, cap=30.0))
        return Result(requeue_after=REFUND_CHECK_SECONDS) if status.phase is P.VERIFIED else Result()

    async def _open_checkout(self, p: Purchase, gw: Gateway) -> bool:
        """Open (or find again, by idempotency key) the session; True when the gateway refused for good."""
        spec, status, meta = p.payment.spec, p.status, p.body["metadata"]
        price = p.app.spec.price
        assert price is not None
        try:
            request = SessionRequest(
                source=spec.source,
                app=spec.app,
                developer=p.developer,
                amount=price.amount,
                currency=price.currency,
                buyer=p.key[0],
                reference=f"{p.key[0]}/{p.key[1]}/{meta['uid']}",
                webhook_url=self.settings.webhook_public_url or None,
            )
        except ValidationError as exc:
            raise Problem(
                "InvalidCatalogEntry", f"No checkout can be asked for: {clip(str(exc), 300)}.", stalled=True
            ) from exc
        status.quote = price  # from the catalog, never from the user
        try:
            view = await gw.create_session(request, idempotency_key=idempotency_key(meta["uid"]))
        except GatewayError as err:
            if err.retryable:
                raise
            status.phase = next_phase(P.PENDING, PaymentEvent.CHECKOUT_FAILED)
            await self._end(
                p.body,
                status,
                err.reason,
                f"{err.message} Nothing was charged; create a new Payment once the cause is fixed.",
            )
            return True
        status.session_id, status.checkout_url, status.expires_at = (
            view.session,
            view.checkout_url,
            view.expires_at,
        )
        status.phase = next_phase(P.PENDING, PaymentEvent.SESSION_CREATED)
        # Recorded before anything else can fail: a retry then follows this session instead of asking again.
        await self._write(p.body, status, summary(status))
        self.webhook_secrets.follow(p.key, spec.source, view.session)
        self.events.normal(
            p.body, "CheckoutOpened", f"Pay {price.amount} {price.currency} at {view.checkout_url}."
        )
        if view.state is not SessionState.OPEN:
            self._step(p, view.state)
        return False

    def _step(self, p: Purchase, state: SessionState) -> None:
        before = p.status.phase or P.PENDING
        try:
            after = after_session(before, state)
        except IllegalTransition as exc:
            raise GatewayError(
                "GatewayProtocolError",
                f"The payment gateway says session {p.status.session_id} is {state.value}, but {exc}.",
                retryable=True,
            ) from exc
        if after is not before:
            self.events.normal(p.body, after.value, f"The payment is now {after.value}.")
        p.status.phase = after

    async def _verify(self, p: Purchase, gw: Gateway) -> Result | None:
        """Paid: fetch, verify and keep the receipt; a Result when the Payment ended here."""
        status, spec = p.status, p.payment.spec
        receipt = (await gw.receipt(str(status.session_id))).model_dump(
            include={"protected", "payload", "signature"}
        )
        try:
            claims = receipts.verify(receipt, p.keys)
            receipts.check(claims, p.expected())
        except receipts.BadSignature as exc:
            raise Problem(
                "ReceiptSignatureInvalid",
                f"The receipt for session {status.session_id} was not signed by a key MarketSource {spec.source} "
                f"trusts ({exc}). If the gateway rotated its key, put the new one in spec.payment.publicKey and "
                "keep the old one in retiredKeys; the Payment stays Paid and the operator tries again.",
            ) from exc
        except receipts.InvalidReceipt as exc:
            status.phase = next_phase(P.PAID, PaymentEvent.RECEIPT_REJECTED)
            message = (
                f"The receipt was rejected: {clip(str(exc), 300)}. Nothing is unlocked; ask the gateway."
            )
            return await self._end(p.body, status, "ReceiptRejected", message)
        secret = receipt_store.receipt_secret(p.body, source=spec.source, app=spec.app, receipt=receipt)
        try:
            name = await receipt_store.store(self.kube, secret)
        except KubeError as err:
            raise Problem(
                "ReceiptNotStored",
                f"The verified receipt could not be kept in Secret {secret['metadata']['name']}: "
                f"{clip(err.message, 300)}. The Payment stays Paid and the operator tries again.",
            ) from err
        status.receipt_secret_ref = ReceiptReference(name=name)
        status.phase = next_phase(P.PAID, PaymentEvent.RECEIPT_VERIFIED)
        self.events.normal(
            p.body, "Verified", f"The receipt for {spec.app} verified; it is kept in Secret {name}."
        )
        return None

    async def _receipt_holds(self, p: Purchase) -> bool:
        """The receipt Secret this Payment owns still verifies and matches: the phase is earned."""
        ref, status = p.status.receipt_secret_ref, p.status
        if ref is None or status.quote is None or status.session_id is None:
            return False
        receipt = await receipt_store.load(self.kube, ref.name, p.key[0], owner_uid=p.body["metadata"]["uid"])
        if receipt is None:
            return False
        try:
            receipts.check(receipts.verify(receipt, p.keys), p.expected())
        except receipts.InvalidReceipt:
            return False
        return True

    async def _token(self, source: str, gateway: PaymentGateway) -> str:
        """The gateway's API token; the webhook secret is kept in memory for the webhook endpoint."""
        ref = gateway.secret_ref
        self._secret_of[source] = (ref.namespace, ref.name)
        try:
            data = await self.kube.read_secret_data(ref.name, ref.namespace)
        except KubeError as err:
            raise Problem(
                "ApiUnavailable",
                f"Reading Secret {ref.namespace}/{ref.name} failed: {clip(err.message, 300)}",
            ) from err
        self.webhook_secrets.set_source(source, (data or {}).get("webhookSecret", "").encode() or None)
        if not data or not data.get("token"):
            raise Problem(
                "GatewaySecretNotFound",
                f"Secret {ref.namespace}/{ref.name} with the gateway's token does not exist or has no `token`.",
            )
        return data["token"]

    # --- status ----------------------------------------------------------------------------------

    async def _end(self, body: Body, status: PaymentStatus, reason: str, message: str) -> Result:
        """A terminal outcome (or a refusal): Ready=False, Stalled, said once as a Warning."""
        if status.phase not in TERMINAL:
            status.phase = P.FAILED
        self.polls.pop(key_of(body), None)
        if await self._write(body, status, Summary(False, reason, message, stalled=True)):
            self.events.warning(body, reason, message)
        return Result()

    async def _get(self, res: Any, name: str, what: str) -> Body:
        try:
            found = await self.kube.get(res, name)
        except KubeError as err:
            raise Problem("ApiUnavailable", f"Reading {name} failed: {clip(err.message, 300)}") from err
        if found is None:
            raise Problem(f"{what}NotFound", f"{what} {name} does not exist; check spec.source and spec.app.")
        return found

    async def _write(self, body: Body, status: PaymentStatus | None, summary: Summary) -> bool:
        status = status or PaymentStatus.model_validate(body.get("status") or {})
        return await write_status(self.kube, PaymentResource, body, status, summary, remember=self.remember)
