"""Receipts: a gateway's signed statement that a purchase was paid (pure).

A receipt is a JWS in flattened JSON serialization (RFC 7515) signed with Ed25519 (alg EdDSA,
RFC 8037): {"protected": b64url({"alg":"EdDSA","kid":...}), "payload": b64url(JSON), "signature":
b64url(sig over protected + "." + payload)}. It verifies against the keys a MarketSource declares
(its current key and the retired keys it still honours, picked by the header's `kid`), and its
fields must match the Payment it is for: a receipt for another app, another buyer, another amount
or another session unlocks nothing. Keys are accepted in the common formats (KEY_FORMATS), so
that a key pasted from `openssl pkey -pubout` works as well as the raw 32 bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kubemart.domain import bounded_json

RECEIPT_FIELDS = ("source", "app", "developer", "buyer", "amount", "currency", "session", "paidAt")
MAX_PART = 16 * 1024
"""Largest part (header, payload, signature) of a receipt, in characters."""


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


KEY_FORMATS = (
    "base64 or base64url of the 32 raw bytes, base64 of the DER SubjectPublicKeyInfo (MCowBQYDK2VwAyEA...), "
    "or PEM (-----BEGIN PUBLIC KEY-----)"
)
MAX_KEY_CHARS = 1024


def _b64_any(text: str) -> bytes:
    """Standard or url-safe base64, padded or not; ValueError for anything else."""
    compact = "".join(text.split()).replace("-", "+").replace("_", "/")
    return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)


def public_key_from(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key in any of the documented formats (KEY_FORMATS); InvalidReceipt naming them."""
    refused = InvalidReceipt(f"the public key is not an Ed25519 public key given as {KEY_FORMATS}")
    text = text.strip()
    if not text or len(text) > MAX_KEY_CHARS:
        raise refused
    try:
        if text.startswith("-----BEGIN"):
            key: object = serialization.load_pem_public_key(text.encode())
        else:
            raw = _b64_any(text)
            key = (
                Ed25519PublicKey.from_public_bytes(raw)
                if len(raw) == 32
                else serialization.load_der_public_key(raw)
            )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise refused from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidReceipt(
            f"the public key is a {type(key).__name__}, not Ed25519; give it as {KEY_FORMATS}"
        )
    return key


@dataclass(frozen=True)
class Keyring:
    """The keys a source trusts for receipts, each with its key id (`kid`; may be empty)."""

    keys: tuple[tuple[str, Ed25519PublicKey], ...]

    def candidates(self, kid: str) -> list[Ed25519PublicKey]:
        """The keys named `kid`; all of them when the receipt names none or a kid no key has."""
        named = [key for key_id, key in self.keys if kid and key_id == kid]
        return named or [key for _, key in self.keys]


def keyring(entries: Iterable[tuple[str, str]]) -> Keyring:
    """A Keyring from (kid, key text) pairs; InvalidReceipt naming the first key that cannot be read."""
    keys = []
    for kid, text in entries:
        try:
            keys.append((kid, public_key_from(text)))
        except InvalidReceipt as exc:
            raise InvalidReceipt(f"{f'key {kid!r}: ' if kid else ''}{exc}") from exc
    if not keys:
        raise InvalidReceipt("no public key is given")
    return Keyring(tuple(keys))


def sign(claims: Mapping[str, Any], key: Ed25519PrivateKey, *, kid: str = "") -> dict[str, str]:
    """A receipt, as a gateway makes one (used by tests and by gateways written in Python)."""
    protected = b64url(json.dumps({"alg": "EdDSA", "kid": kid}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(dict(claims), sort_keys=True, separators=(",", ":")).encode())
    signature = b64url(key.sign(f"{protected}.{payload}".encode()))
    return {"protected": protected, "payload": payload, "signature": signature}


class BadSignature(InvalidReceipt):
    """The receipt is well formed but no trusted key signed it (a forgery, or a key the source lacks)."""


def verify(receipt: Mapping[str, Any], keys: Keyring | Ed25519PublicKey) -> dict[str, Any]:
    """The receipt's claims if a trusted key signed it; InvalidReceipt (BadSignature for the signature)."""
    ring = keys if isinstance(keys, Keyring) else Keyring((("", keys),))
    try:
        protected, payload, signature = (receipt[k] for k in ("protected", "payload", "signature"))
        if not all(isinstance(p, str) and len(p) <= MAX_PART for p in (protected, payload, signature)):
            raise TypeError("the parts are not bounded strings")
        header = bounded_json.loads(b64url_decode(protected), max_bytes=MAX_PART)
        if not isinstance(header, dict):
            raise TypeError("the header is not an object")
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidReceipt("the receipt is not a JWS in flattened JSON form") from exc
    if header.get("alg") != "EdDSA":
        raise InvalidReceipt(f"the receipt is signed with {str(header.get('alg'))[:20]!r}, not EdDSA")
    kid = header.get("kid")
    kid = kid if isinstance(kid, str) else ""
    signed = f"{protected}.{payload}".encode()
    try:
        raw_signature = b64url_decode(signature)
    except ValueError as exc:
        raise BadSignature("the receipt's signature is not base64url") from exc
    if not any(_signed_by(key, raw_signature, signed) for key in ring.candidates(kid)):
        named = f" (kid {kid[:64]!r})" if kid else ""
        raise BadSignature(f"the receipt's signature{named} does not verify against the source's public keys")
    try:
        claims = bounded_json.loads(b64url_decode(payload), max_bytes=MAX_PART)
    except ValueError as exc:
        raise InvalidReceipt("the receipt's payload is not JSON within bounds") from exc
    if not isinstance(claims, dict):
        raise InvalidReceipt("the receipt's payload is not a JSON object")
    return claims


def _signed_by(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


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
