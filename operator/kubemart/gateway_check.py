"""`kubemart gateway-check`: drive a payment gateway through the protocol and list what conforms.

For gateway authors (docs/payment-gateway.md, "Conformance"): create a session (twice with one
Idempotency-Key, and once with developer null), read it, cancel one, refuse a bad token and a bad
request, then, when it can be paid (a sandbox hook, or a person within a time limit), fetch the
receipt and verify its schema, signature and claims; after a refund hook, the refund answers. Every
reply goes through the operator's own adapter and message models, so a gateway that passes here
is read the same way by the operator.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kubemart.adapters.gateway import Gateway, GatewayError, Reply
from kubemart.domain import gateway_protocol as protocol
from kubemart.domain import receipts
from kubemart.domain.gateway_protocol import InvalidMessage, Session, SessionCreated, SessionState


@dataclass(frozen=True)
class Finding:
    check: str
    outcome: str
    """PASS, FAIL or SKIP."""
    detail: str

    def line(self) -> str:
        return f"{self.outcome}  {self.check}: {self.detail}"


@dataclass
class Options:
    url: str
    token: str
    public_key: str
    key_id: str = ""
    pay_url: str | None = None
    refund_url: str | None = None
    wait_for_payment: float = 0.0
    source: str = "kubemart-conformance"
    app: str = "conformance-app"
    amount: str = "1.00"
    currency: str = "USD"
    timeout: float = 10.0
    poll_interval: float = 0.5


@dataclass
class Run:
    options: Options
    gw: Gateway
    findings: list[Finding] = field(default_factory=list)

    def note(self, check: str, ok: bool, detail: str) -> bool:
        self.findings.append(Finding(check, "PASS" if ok else "FAIL", detail))
        return ok

    def skip(self, check: str, detail: str) -> None:
        self.findings.append(Finding(check, "SKIP", detail))

    def request(self, developer: str | None) -> dict[str, Any]:
        o = self.options
        return {
            "source": o.source,
            "app": o.app,
            "developer": developer,
            "amount": o.amount,
            "currency": o.currency,
            "buyer": "kubemart-conformance",
            "reference": f"kubemart-conformance/check/{uuid.uuid4()}",
        }

    async def call(self, check: str, method: str, path: str, **kwargs: Any) -> Reply | None:
        try:
            return await self.gw.exchange(method, path, **kwargs)
        except GatewayError as err:
            self.note(check, False, err.message)
            return None

    def parsed(
        self, check: str, model: type[protocol.M], reply: Reply, want: tuple[int, ...]
    ) -> protocol.M | None:
        if reply.status not in want:
            self.note(check, False, f"answered {reply.status}, expected {' or '.join(map(str, want))}")
            return None
        try:
            return protocol.parse(model, reply.body)
        except InvalidMessage as exc:
            self.note(check, False, f"the body is not a {model.__name__} (docs/payment-gateway/): {exc}")
            return None


async def run(options: Options) -> list[Finding]:
    try:
        keys = receipts.keyring([(options.key_id, options.public_key)])
    except receipts.InvalidReceipt as exc:
        return [Finding("public-key", "FAIL", str(exc))]
    async with Gateway(options.url, options.token, timeout=options.timeout) as gw:
        r = Run(options, gw)
        await _auth_and_bad_requests(r)
        first = await _create(r, keys)
        if first is not None:
            await _paid(r, keys, *first)
    return r.findings


async def _auth_and_bad_requests(r: Run) -> None:
    body = r.request("Conformance Developer")
    reply = await r.call("auth", "POST", "/sessions", body=body, token="kubemart-conformance-wrong-token")
    if reply is not None:
        r.note("auth", reply.status in (401, 403), f"a wrong token got {reply.status} (401 or 403 expected)")
    reply = await r.call("create.invalid", "POST", "/sessions", body={**body, "amount": "free"})
    if reply is not None:
        ok = 400 <= reply.status < 500 and reply.status not in (401, 403, 408, 429)
        r.note("create.invalid", ok, f"an amount of 'free' got {reply.status} (a 4xx refusal expected)")
    reply = await r.call("view.unknown", "GET", f"/sessions/kubemart-conformance-{uuid.uuid4().hex}")
    if reply is not None:
        r.note("view.unknown", reply.status == 404, f"an unknown session got {reply.status} (404 expected)")


async def _create(r: Run, keys: receipts.Keyring) -> tuple[dict[str, Any], SessionCreated] | None:
    request, key = r.request("Conformance Developer"), f"kubemart-conformance-{uuid.uuid4()}"
    headers = {protocol.IDEMPOTENCY_HEADER: key}
    reply = await r.call("create", "POST", "/sessions", body=request, headers=headers)
    created = reply and r.parsed("create", SessionCreated, reply, (201, 200))
    if not created:
        return None
    r.note(
        "create",
        created.state is SessionState.OPEN,
        f"session {created.session}, state {created.state.value}",
    )
    reply = await r.call("create.idempotent", "POST", "/sessions", body=request, headers=headers)
    again = reply and r.parsed("create.idempotent", SessionCreated, reply, (200, 201))
    if again:
        r.note(
            "create.idempotent",
            again.session == created.session,
            f"the same key gave session {again.session}",
        )
    other = r.request(None)
    headers = {protocol.IDEMPOTENCY_HEADER: f"kubemart-conformance-{uuid.uuid4()}"}
    reply = await r.call("create.developer-null", "POST", "/sessions", body=other, headers=headers)
    second = reply and r.parsed("create.developer-null", SessionCreated, reply, (201, 200))
    if second:
        r.note("create.developer-null", second.session != created.session, f"session {second.session}")
        await _cancel(r, second.session)
    path = f"/sessions/{created.session}"
    reply = await r.call("view", "GET", path)
    view = reply and r.parsed("view", Session, reply, (200,))
    if view:
        r.note(
            "view",
            (view.session, view.state) == (created.session, SessionState.OPEN),
            f"state {view.state.value}",
        )
    reply = await r.call("receipt.before-paid", "GET", f"{path}/receipt")
    if reply is not None:
        r.note(
            "receipt.before-paid", reply.status == 404, f"an open session's receipt got {reply.status} (404)"
        )
    return request, created


async def _cancel(r: Run, session: str) -> None:
    reply = await r.call("cancel", "POST", f"/sessions/{session}/cancel")
    canceled = reply and r.parsed("cancel", Session, reply, (200,))
    if canceled:
        r.note(
            "cancel", canceled.state is SessionState.CANCELED, f"state {canceled.state.value} after cancel"
        )


async def _until(r: Run, session: str, state: SessionState, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        reply = await r.call(f"view.{state.value}", "GET", f"/sessions/{session}")
        view = reply and r.parsed(f"view.{state.value}", Session, reply, (200,))
        if not view:
            return False
        if view.state is state:
            return r.note(f"view.{state.value}", True, f"the session reads {state.value}")
        if time.monotonic() >= deadline:
            return r.note(f"view.{state.value}", False, f"still {view.state.value} after {seconds:.0f} s")
        await asyncio.sleep(r.options.poll_interval)


async def _hook(r: Run, check: str, url: str | None, session: str) -> Callable[[], Awaitable[None]] | None:
    if url is None:
        return None

    async def fire() -> None:
        hook = Gateway(url.replace("{session}", session), r.options.token, timeout=r.options.timeout)
        async with hook:
            reply = await hook.exchange("POST", "")
        if reply.status >= 300:
            r.note(check, False, f"the hook answered {reply.status}")

    return fire


async def _paid(r: Run, keys: receipts.Keyring, request: dict[str, Any], created: SessionCreated) -> None:
    o, session = r.options, created.session
    pay = await _hook(r, "pay", o.pay_url, session)
    if pay is not None:
        await pay()
    elif o.wait_for_payment > 0:
        print(f"Pay session {session} at {created.checkout_url} within {o.wait_for_payment:.0f} s ...")
    else:
        r.skip("receipt", "no --pay-url and no --wait-for-payment: the receipt is not checked")
        return
    if not await _until(r, session, SessionState.PAID, max(o.wait_for_payment, 5.0)):
        return
    reply = await r.call("receipt", "GET", f"/sessions/{session}/receipt")
    receipt = reply and r.parsed("receipt", protocol.Receipt, reply, (200,))
    if receipt:
        _check_receipt(r, keys, request, session, receipt)
    refund = await _hook(r, "refund", o.refund_url, session)
    if refund is None:
        r.skip("refund", "no --refund-url: what the gateway answers after a refund is not checked")
        return
    await refund()
    if await _until(r, session, SessionState.REFUNDED, 5.0):
        reply = await r.call("receipt.after-refund", "GET", f"/sessions/{session}/receipt")
        if reply is not None:
            r.note(
                "receipt.after-refund", reply.status == 410, f"a refunded receipt got {reply.status} (410)"
            )


def _check_receipt(
    r: Run, keys: receipts.Keyring, request: dict[str, Any], session: str, receipt: protocol.Receipt
) -> None:
    try:
        header = protocol.parse(protocol.ReceiptHeader, receipts.b64url_decode(receipt.protected))
        protocol.parse(protocol.ReceiptClaims, receipts.b64url_decode(receipt.payload))
        claims = receipts.verify(receipt.model_dump(include={"protected", "payload", "signature"}), keys)
    except (InvalidMessage, receipts.InvalidReceipt, ValueError) as exc:
        r.note("receipt", False, str(exc))
        return
    r.note(
        "receipt",
        True,
        f"signed (kid {header.kid or 'none'}) by the given key; header and claims fit the schemas",
    )
    wrong = [
        name
        for name in ("source", "app", "developer", "buyer", "currency")
        if claims.get(name) != request[name]
    ]
    if claims.get("session") != session:
        wrong.append("session")
    if Decimal(str(claims.get("amount"))) != Decimal(request["amount"]):
        wrong.append("amount")
    r.note("receipt.claims", not wrong, f"claims that differ from the request: {', '.join(wrong) or 'none'}")
