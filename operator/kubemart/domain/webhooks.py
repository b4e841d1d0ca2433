"""Webhook signatures (pure): HMAC-SHA256 over the timestamp and the body, in a time window.

Header `Kubemart-Signature: t=<unix seconds>,v1=<hex hmac_sha256(secret, "<t>.<body>")>`, as
Stripe does. A webhook only tells the operator to look at a session again; what it then trusts
is read from the gateway and checked, so a replayed webhook has no second effect.
"""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_SECONDS = 300


class BadSignature(ValueError):
    pass


def signature_header(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(header: str | None, secret: bytes, body: bytes, *, now: float) -> int:
    """The signed timestamp, or BadSignature with the reason."""
    if not header:
        raise BadSignature("no Kubemart-Signature header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError) as exc:
        raise BadSignature("the signature header is not t=<seconds>,v1=<hex>") from exc
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise BadSignature("the signature's timestamp is outside the accepted window")
    want = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, given):
        raise BadSignature("the signature does not match")
    return timestamp
