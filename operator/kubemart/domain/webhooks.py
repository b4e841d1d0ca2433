"""Webhook signatures (pure): HMAC-SHA256 over the timestamp and the body, in a time window.

Header `Kubemart-Signature: t=<unix seconds>,v1=<hex hmac_sha256(secret, "<t>.<body>")>`, as
Stripe does; up to four `v1=` entries, so that a gateway can sign with its old and new secret
while a rotation is under way. A webhook only tells the operator to look at a session again;
what it then trusts is read from the gateway and checked, so a replayed webhook has no second
effect. The signature is checked on the raw bytes before anything parses them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

HEADER = "Kubemart-Signature"
TOLERANCE_SECONDS = 300
MAX_HEADER_CHARS = 512
MAX_SIGNATURES = 4


class BadSignature(ValueError):
    pass


def signature_header(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _parse(header: str | None, *, now: float) -> tuple[int, list[str]]:
    if not header:
        raise BadSignature(f"no {HEADER} header")
    if len(header) > MAX_HEADER_CHARS:
        raise BadSignature("the signature header is too long")
    pairs = [p.strip().split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in pairs if k == "t"]
    given = [v for k, v in pairs if k == "v1"][:MAX_SIGNATURES]
    try:
        (stamp,) = stamps
        timestamp = int(stamp)
    except ValueError as exc:
        raise BadSignature("the signature header is not t=<seconds>,v1=<hex>") from exc
    if not given:
        raise BadSignature("the signature header is not t=<seconds>,v1=<hex>")
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise BadSignature("the signature's timestamp is outside the accepted window")
    return timestamp, given


def _matches(secret: bytes, body: bytes, timestamp: int, given: list[str]) -> bool:
    want = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    # Every entry is compared (no early exit), each in constant time.
    return sum(hmac.compare_digest(want, g) for g in given) > 0


def verify_signature(header: str | None, secret: bytes, body: bytes, *, now: float) -> int:
    """The signed timestamp, or BadSignature with the reason."""
    timestamp, given = _parse(header, now=now)
    if not _matches(secret, body, timestamp, given):
        raise BadSignature("the signature does not match")
    return timestamp


def signers(header: str | None, body: bytes, secrets: Mapping[str, bytes], *, now: float) -> list[str]:
    """Who (of `secrets`, by name) signed `body`; BadSignature when nobody did."""
    timestamp, given = _parse(header, now=now)
    found = [name for name, secret in secrets.items() if _matches(secret, body, timestamp, given)]
    if not found:
        raise BadSignature("the signature does not match")
    return found
