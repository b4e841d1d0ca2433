"""Receipts: a gateway's signed statement that a purchase was paid (pure).

A receipt is a JWS in flattened JSON serialization (RFC 7515) signed with Ed25519 (alg EdDSA,
RFC 8037): {"protected": b64url({"alg":"EdDSA","kid":...}), "payload": b64url(JSON), "signature":
b64url(sig over protected + "." + payload)}. It verifies against the public key a MarketSource
declares, and its fields must match the Payment it is for: a receipt for another app, another
buyer, another amount or another session unlocks nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

RECEIPT_FIELDS = ("source", "app", "developer", "buyer", "amount", "currency", "session", "paidAt")


class InvalidReceipt(ValueError):
    """The receipt cannot be trusted; the message says why (never the receipt itself)."""


@dataclass(frozen=True)
class Expected:
    """What a receipt must say to be this Payment's."""

    source: str
    app: str
    developer: str | None
    buyer: str
    amount: str
    currency: str
    session: str


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_from(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key given as base64 (standard or url-safe) of its 32 raw bytes."""
    try:
        raw = (
            base64.b64decode(text, validate=False)
            if "-" not in text and "_" not in text
            else b64url_decode(text)
        )
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise InvalidReceipt("the source's public key is not 32 bytes of Ed25519 in base64") from exc


def sign(claims: Mapping[str, Any], key: Ed25519PrivateKey, *, kid: str = "") -> dict[str, str]:
    """A receipt, as a gateway makes one (used by tests and by gateways written in Python)."""
    protected = b64url(json.dumps({"alg": "EdDSA", "kid": kid}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(dict(claims), sort_keys=True, separators=(",", ":")).encode())
    signature = b64url(key.sign(f"{protected}.{payload}".encode()))
    return {"protected": protected, "payload": payload, "signature": signature}


def verify(receipt: Mapping[str, Any], key: Ed25519PublicKey) -> dict[str, Any]:
    """The receipt's claims if its signature is good; InvalidReceipt otherwise."""
    try:
        protected, payload, signature = (str(receipt[k]) for k in ("protected", "payload", "signature"))
        header = json.loads(b64url_decode(protected))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidReceipt("the receipt is not a JWS in flattened JSON form") from exc
    if header.get("alg") != "EdDSA":
        raise InvalidReceipt(f"the receipt is signed with {header.get('alg')!r}, not EdDSA")
    try:
        key.verify(b64url_decode(signature), f"{protected}.{payload}".encode())
    except (InvalidSignature, ValueError) as exc:
        raise InvalidReceipt(
            "the receipt's signature does not verify against the source's public key"
        ) from exc
    try:
        claims = json.loads(b64url_decode(payload))
    except ValueError as exc:
        raise InvalidReceipt("the receipt's payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise InvalidReceipt("the receipt's payload is not a JSON object")
    return claims


def _same_amount(a: Any, b: str) -> bool:
    try:
        return Decimal(str(a)) == Decimal(b)
    except InvalidOperation:
        return False


def check(claims: Mapping[str, Any], expected: Expected) -> None:
    """InvalidReceipt naming the first field that does not match this Payment."""
    missing = [f for f in RECEIPT_FIELDS if f not in claims]
    if missing:
        raise InvalidReceipt(f"the receipt lacks {', '.join(missing)}")
    pairs = {
        "source": expected.source,
        "app": expected.app,
        "buyer": expected.buyer,
        "session": expected.session,
        "currency": expected.currency,
    }
    for name, want in pairs.items():
        if str(claims[name]) != want:
            raise InvalidReceipt(f"the receipt is for {name} {claims[name]!r}, not {want!r}")
    if expected.developer is not None and str(claims["developer"]) != expected.developer:
        raise InvalidReceipt(
            f"the receipt names developer {claims['developer']!r}, not {expected.developer!r}"
        )
    if not _same_amount(claims["amount"], expected.amount):
        raise InvalidReceipt(
            f"the receipt is for amount {claims['amount']} {claims['currency']}, not {expected.amount}"
        )


def check_license(
    claims: Mapping[str, Any], *, source: str, app: str, buyer: str, developer: str | None
) -> None:
    """A receipt is a licence for one app of one source, bought by one namespace, from its developer."""
    missing = [f for f in RECEIPT_FIELDS if f not in claims]
    if missing:
        raise InvalidReceipt(f"the receipt lacks {', '.join(missing)}")
    for name, want in (("source", source), ("app", app), ("buyer", buyer)):
        if str(claims[name]) != want:
            raise InvalidReceipt(f"the receipt is for {name} {claims[name]!r}, not {want!r}")
    if developer is not None and str(claims["developer"]) != developer:
        raise InvalidReceipt(f"the receipt names developer {claims['developer']!r}, not {developer!r}")
