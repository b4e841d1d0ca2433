"""Payments (pure): every allowed and every refused transition, receipts and their keys, names, webhook signatures."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kubemart.domain import receipts, webhooks
from kubemart.domain.gateway_protocol import SessionState
from kubemart.domain.payments import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    PaymentEvent,
    after_session,
    label_value,
    next_phase,
    receipt_secret_name,
    summary,
    terminal_summary,
    unlocks,
)
from kubemart.models.payment import PaymentPhase as P
from kubemart.models.payment import PaymentStatus
from kubemart.models.resource import Condition, ConditionStatus
from support.gateway import encode_key

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


# --- public keys: every documented format, and a clear refusal ------------------------------------


@pytest.mark.parametrize("key_format", ["raw", "raw-url", "spki", "pem"])
def test_public_keys_in_every_documented_format(key_format: str) -> None:
    text = encode_key(KEY, key_format)
    key = receipts.public_key_from(f"  {text}\n")
    assert key.public_bytes(Encoding.Raw, PublicFormat.Raw) == KEY.public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    receipts.verify(receipts.sign(CLAIMS, KEY), key)


RSA_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=1024)
    .public_key()
    .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("", "base64 or base64url of the 32 raw bytes", id="empty"),
        pytest.param("MCowBQYDK2VwAyEA", "SubjectPublicKeyInfo", id="truncated SPKI"),
        pytest.param(base64.b64encode(b"k" * 33).decode(), "PEM", id="33 bytes"),
        pytest.param("not base64 at all, not a key!", "PEM", id="not base64"),
        pytest.param("A" * 2000, "PEM", id="too long"),
        pytest.param("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", "PEM", id="broken PEM"),
        pytest.param(RSA_PEM, "RSAPublicKey, not Ed25519", id="an RSA key"),
    ],
)
def test_unreadable_public_keys_are_refused_naming_the_formats(text: str, says: str) -> None:
    with pytest.raises(receipts.InvalidReceipt, match=says):
        receipts.public_key_from(text)


OLD, NEW = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
RING = receipts.keyring([("2026-11", encode_key(NEW, "spki")), ("2026-05", encode_key(OLD, "pem"))])


@pytest.mark.parametrize(
    ("signer", "kid", "verifies"),
    [
        pytest.param(NEW, "2026-11", True, id="current key, its kid"),
        pytest.param(OLD, "2026-05", True, id="retired key, its kid"),
        pytest.param(OLD, "", True, id="retired key, no kid: every key is tried"),
        pytest.param(NEW, "unknown", True, id="unknown kid: every key is tried"),
        pytest.param(OLD, "2026-11", False, id="a kid naming another key"),
        pytest.param(KEY, "", False, id="a key the source does not list"),
    ],
)
def test_key_rotation_by_kid(signer: Ed25519PrivateKey, kid: str, verifies: bool) -> None:
    receipt = receipts.sign(CLAIMS, signer, kid=kid)
    if verifies:
        assert receipts.verify(receipt, RING) == CLAIMS
    else:
        with pytest.raises(receipts.BadSignature):
            receipts.verify(receipt, RING)


def test_a_keyring_names_the_key_it_cannot_read() -> None:
    with pytest.raises(receipts.InvalidReceipt, match="key '2026-05': the public key is not"):
        receipts.keyring([("2026-11", encode_key(NEW, "raw")), ("2026-05", "garbage")])


def test_a_receipt_with_huge_parts_is_refused_before_any_work() -> None:
    good = receipts.sign(CLAIMS, KEY)
    with pytest.raises(receipts.InvalidReceipt, match="not a JWS"):
        receipts.verify({**good, "payload": "A" * (receipts.MAX_PART + 1)}, receipts.public_key_from(PUBLIC))


# --- the session's state, the receipt Secret's name ----------------------------------------------


@pytest.mark.parametrize(
    ("phase", "state", "after"),
    [
        (P.AWAITING_PAYMENT, SessionState.OPEN, P.AWAITING_PAYMENT),
        (P.AWAITING_PAYMENT, SessionState.PAID, P.PAID),
        (P.AWAITING_PAYMENT, SessionState.EXPIRED, P.EXPIRED),
        (P.AWAITING_PAYMENT, SessionState.REFUNDED, P.REFUNDED),
        (P.PAID, SessionState.PAID, P.PAID),
        (P.VERIFIED, SessionState.PAID, P.VERIFIED),
        (P.VERIFIED, SessionState.REFUNDED, P.REFUNDED),
        (P.VERIFIED, SessionState.OPEN, None),
        (P.VERIFIED, SessionState.FAILED, None),
        (P.PAID, SessionState.OPEN, None),
    ],
    ids=lambda v: str(getattr(v, "value", v)),
)
def test_what_a_session_state_means(phase: P, state: SessionState, after: P | None) -> None:
    if after is None:
        with pytest.raises(IllegalTransition):
            after_session(phase, state)
    else:
        assert after_session(phase, state) is after


DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@pytest.mark.parametrize(
    ("payment", "expected"),
    [
        pytest.param("buy", "buy-receipt", id="short: as it always was"),
        pytest.param("a" * 245, "a" * 245 + "-receipt", id="253 exactly"),
        pytest.param("a" * 246, None, id="254: shortened"),
        pytest.param("x." * 126 + "y", None, id="dots at the cut"),
        pytest.param("b" * 253, None, id="the longest name"),
    ],
)
def test_the_receipt_secret_name_is_always_valid(payment: str, expected: str | None) -> None:
    name = receipt_secret_name(payment)
    assert len(name) <= 253
    assert DNS_SUBDOMAIN.fullmatch(name), name
    if expected is not None:
        assert name == expected
    else:
        assert name.endswith("-receipt")
        assert receipt_secret_name(payment[:-1] + "z") != name, "two long names never share a Secret"


@pytest.mark.parametrize(
    ("text", "kept"), [("notes", True), ("a" * 63, True), ("a" * 64, False), ("-x-", False), ("a b", False)]
)
def test_label_values(text: str, kept: bool) -> None:
    value = label_value(text)
    assert (value == text) is kept
    assert len(value) <= 63
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value)


# --- webhooks: who signed, rotation, bounds ----------------------------------------------------


SECRETS = {"acme": b"whsec_acme", "other": b"whsec_other"}


def test_signers_names_the_source_whose_secret_signed() -> None:
    header = webhooks.signature_header(SECRETS["acme"], BODY, 1_000_000)
    assert webhooks.signers(header, BODY, SECRETS, now=1_000_000) == ["acme"]


def test_a_gateway_rotating_its_webhook_secret_signs_with_both() -> None:
    old = webhooks.signature_header(b"whsec_old", BODY, 1_000_000)
    new = webhooks.signature_header(SECRETS["acme"], BODY, 1_000_000)
    header = f"{old},{new.split(',')[1]}"
    assert webhooks.signers(header, BODY, SECRETS, now=1_000_000) == ["acme"]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        pytest.param(
            webhooks.signature_header(b"nobody", BODY, 1_000_000), "does not match", id="unknown secret"
        ),
        pytest.param("t=1000000," + ",".join(["v1=00"] * 200), "too long", id="a flood of signatures"),
        pytest.param("t=1,t=2,v1=00", "not t=", id="two timestamps"),
    ],
)
def test_signers_refuses(header: str, reason: str) -> None:
    with pytest.raises(webhooks.BadSignature, match=reason):
        webhooks.signers(header, BODY, SECRETS, now=1_000_000)


# --- conditions -----------------------------------------------------------------------------------


def _cond(type_: str, status: str, reason: str) -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus(status),
        reason=reason,
        message=f"{reason}!",
        last_transition_time=NOW,
    )


NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    ("previous", "reason"),
    [
        pytest.param([], "Failed", id="nothing before: the phase"),
        pytest.param(
            [_cond("Ready", "False", "AppIsFree"), _cond("Stalled", "True", "AppIsFree")],
            "AppIsFree",
            id="kept",
        ),
        pytest.param(
            [_cond("Ready", "False", "GatewayUnavailable")], "Failed", id="a retried problem is not kept"
        ),
        pytest.param([_cond("Ready", "True", "Verified")], "Failed", id="was ready"),
    ],
)
def test_a_terminal_payment_keeps_the_reason_it_ended_with(previous: list[Condition], reason: str) -> None:
    out = terminal_summary(previous, PaymentStatus(phase=P.FAILED))
    assert (out.ready, out.reason, out.stalled) == (False, reason, True)


@pytest.mark.parametrize(
    ("phase", "ready", "reason"),
    [
        (P.PENDING, None, "Pending"),
        (P.AWAITING_PAYMENT, False, "AwaitingPayment"),
        (P.PAID, None, "Paid"),
        (P.VERIFIED, True, "Verified"),
        (P.REFUNDED, False, "Refunded"),
    ],
    ids=lambda v: str(getattr(v, "value", v)),
)
def test_summary_by_phase(phase: P, ready: bool | None, reason: str) -> None:
    out = summary(PaymentStatus(phase=phase))
    assert (out.ready, out.reason) == (ready, reason)
