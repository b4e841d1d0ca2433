"""Payments (pure): every allowed and every refused transition, receipts, webhook signatures."""

from __future__ import annotations

import contextlib
import itertools
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kubemart.domain import receipts, webhooks
from kubemart.domain.payments import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    PaymentEvent,
    next_phase,
    unlocks,
)
from kubemart.models.payment import PaymentPhase as P

ALLOWED = sorted(TRANSITIONS.items(), key=lambda kv: (kv[0][0].value, kv[0][1].value))


@pytest.mark.parametrize(
    ("start", "event", "end"), [(s, e, t) for (s, e), t in ALLOWED], ids=lambda v: str(getattr(v, "value", v))
)
def test_allowed_transitions(start: P, event: PaymentEvent, end: P) -> None:
    assert next_phase(start, event) is end


def _refused() -> list[tuple[P, PaymentEvent]]:
    out = []
    for phase, event in itertools.product(P, PaymentEvent):
        if (phase, event) in TRANSITIONS:
            continue
        repeat = any(to == phase and ev == event for (_, ev), to in TRANSITIONS.items())
        if not repeat:
            out.append((phase, event))
    return out


@pytest.mark.parametrize(("phase", "event"), _refused(), ids=lambda v: str(getattr(v, "value", v)))
def test_refused_transitions(phase: P, event: PaymentEvent) -> None:
    with pytest.raises(IllegalTransition, match=f"phase {phase.value} cannot take the event {event.value}"):
        next_phase(phase, event)


@pytest.mark.parametrize("phase", sorted(TERMINAL), ids=lambda p: p.value)
def test_terminal_phases_lead_nowhere_new(phase: P) -> None:
    for event in PaymentEvent:
        with contextlib.suppress(IllegalTransition):
            assert next_phase(phase, event) is phase


def test_a_repeated_event_is_a_no_op() -> None:
    assert next_phase(P.PAID, PaymentEvent.SESSION_PAID) is P.PAID
    assert next_phase(P.REFUNDED, PaymentEvent.REFUNDED) is P.REFUNDED


@pytest.mark.parametrize("phase", list(P), ids=lambda p: p.value)
def test_only_verified_unlocks(phase: P) -> None:
    assert unlocks(phase) is (phase is P.VERIFIED)


KEY = Ed25519PrivateKey.generate()
PUBLIC = (
    __import__("base64").b64encode(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
)
CLAIMS = {
    "source": "main",
    "app": "notes",
    "developer": "Acme Apps",
    "buyer": "team-a",
    "amount": "4.99",
    "currency": "USD",
    "session": "cs_123",
    "paidAt": "2026-11-22T10:00:00Z",
}
EXPECTED = receipts.Expected("main", "notes", "Acme Apps", "team-a", "4.99", "USD", "cs_123")


def test_a_good_receipt_verifies_and_matches() -> None:
    claims = receipts.verify(receipts.sign(CLAIMS, KEY), receipts.public_key_from(PUBLIC))
    receipts.check(claims, EXPECTED)
    assert claims == CLAIMS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("app", "wiki", id="another app"),
        pytest.param("buyer", "team-b", id="another namespace"),
        pytest.param("amount", "0.99", id="another amount"),
        pytest.param("currency", "EUR", id="another currency"),
        pytest.param("session", "cs_999", id="another session"),
        pytest.param("source", "other", id="another source"),
        pytest.param("developer", "Mallory", id="another developer"),
    ],
)
def test_a_receipt_for_something_else_is_refused(field: str, value: str) -> None:
    claims = receipts.verify(receipts.sign({**CLAIMS, field: value}, KEY), receipts.public_key_from(PUBLIC))
    with pytest.raises(receipts.InvalidReceipt, match=field):
        receipts.check(claims, EXPECTED)


def test_amount_compares_as_a_decimal() -> None:
    receipts.check({**CLAIMS, "amount": "4.990"}, EXPECTED)


def test_a_forged_receipt_is_refused() -> None:
    forged = receipts.sign(CLAIMS, Ed25519PrivateKey.generate())
    with pytest.raises(receipts.InvalidReceipt, match="signature does not verify"):
        receipts.verify(forged, receipts.public_key_from(PUBLIC))


def test_a_tampered_payload_is_refused() -> None:
    good = receipts.sign(CLAIMS, KEY)
    tampered = {**good, "payload": receipts.b64url(json.dumps({**CLAIMS, "amount": "0.01"}).encode())}
    with pytest.raises(receipts.InvalidReceipt, match="signature"):
        receipts.verify(tampered, receipts.public_key_from(PUBLIC))


@pytest.mark.parametrize(
    "receipt",
    [
        pytest.param({}, id="empty"),
        pytest.param({"protected": "x", "payload": "y"}, id="no signature"),
        pytest.param(
            {"protected": receipts.b64url(b'{"alg":"none"}'), "payload": "e30", "signature": ""},
            id="alg none",
        ),
    ],
)
def test_malformed_receipts_are_refused(receipt: dict[str, str]) -> None:
    with pytest.raises(receipts.InvalidReceipt):
        receipts.verify(receipt, receipts.public_key_from(PUBLIC))


def test_a_receipt_missing_fields_is_refused() -> None:
    with pytest.raises(receipts.InvalidReceipt, match="lacks paidAt"):
        receipts.check({k: v for k, v in CLAIMS.items() if k != "paidAt"}, EXPECTED)


SECRET = b"whsec_test"
BODY = b'{"session":"cs_123","state":"paid"}'


def test_webhook_signature_round_trip() -> None:
    header = webhooks.signature_header(SECRET, BODY, 1_000_000)
    assert webhooks.verify_signature(header, SECRET, BODY, now=1_000_010) == 1_000_000


@pytest.mark.parametrize(
    ("header", "body", "now", "reason"),
    [
        pytest.param(None, BODY, 1_000_000, "no Kubemart-Signature", id="missing"),
        pytest.param("v1=abc", BODY, 1_000_000, "not t=", id="malformed"),
        pytest.param(
            webhooks.signature_header(SECRET, BODY, 1_000_000), BODY, 1_000_000 + 301, "window", id="too old"
        ),
        pytest.param(
            webhooks.signature_header(b"other", BODY, 1_000_000),
            BODY,
            1_000_000,
            "does not match",
            id="wrong secret",
        ),
        pytest.param(
            webhooks.signature_header(SECRET, BODY, 1_000_000),
            BODY + b" ",
            1_000_000,
            "does not match",
            id="body changed",
        ),
    ],
)
def test_bad_webhook_signatures(header: str | None, body: bytes, now: float, reason: str) -> None:
    with pytest.raises(webhooks.BadSignature, match=reason):
        webhooks.verify_signature(header, SECRET, body, now=now)
