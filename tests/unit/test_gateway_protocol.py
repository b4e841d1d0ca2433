"""The gateway protocol's messages: bounded JSON, and schema files that say what the operator enforces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kubemart.domain import bounded_json
from kubemart.domain import gateway_protocol as protocol

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "payment-gateway"


# --- bounded JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "says"),
    [
        pytest.param(b"[" * 30_000 + b"]" * 30_000, "nested deeper than 16", id="30,000 deep"),
        pytest.param(b'{"a":' * 17 + b"1" + b"}" * 17, "nested deeper than 16", id="17 deep"),
        pytest.param(b'"' + b"x" * 70_000 + b'"', "larger than 65536", id="too large"),
        pytest.param(b"{'single': 'quotes'}", "not JSON", id="not JSON"),
        pytest.param(b"\xff\xfe", "not JSON", id="not UTF-8"),
        pytest.param(b'{"a": NaN}', "not JSON", id="NaN"),
    ],
)
def test_bounded_json_refuses(data: bytes, says: str) -> None:
    with pytest.raises(bounded_json.InvalidJSON, match=says):
        bounded_json.loads(data)


def test_bounded_json_reads_what_is_within_bounds() -> None:
    assert bounded_json.loads(b'{"a": [[1, {"b": "]]]"}]]}') == {"a": [[1, {"b": "]]]"}]]}
    assert bounded_json.loads(b'{"a":' * 16 + b"1" + b"}" * 16) is not None


@pytest.mark.parametrize(
    ("value", "depth"), [(1, 0), ([], 1), ({"a": [1, {"b": []}]}, 4), ([[], [[]], []], 3)]
)
def test_depth_of(value: Any, depth: int) -> None:
    assert bounded_json.depth_of(value) == depth


# --- the schema files are the models' ----------------------------------------------------------


def test_the_schema_files_are_generated_from_the_models() -> None:
    expected = protocol.schema_files()
    on_disk = {p.name: p.read_text() for p in SCHEMAS.glob("*.schema.json")}
    assert sorted(on_disk) == sorted(expected), (
        "docs/payment-gateway/ is stale: run `python -m kubemart.domain.gateway_protocol docs/payment-gateway`"
    )
    for name, text in expected.items():
        assert on_disk[name] == text, (
            f"{name} is stale: run `python -m kubemart.domain.gateway_protocol docs/payment-gateway`"
        )


@pytest.mark.parametrize("name", sorted(protocol.MESSAGES))
def test_each_schema_file_is_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


SESSION = {"session": "cs_1", "state": "open", "checkoutURL": "https://pay.example/c/cs_1"}
REQUEST = {
    "source": "main",
    "app": "notes",
    "developer": None,
    "amount": "4.99",
    "currency": "USD",
    "buyer": "team-a",
    "reference": "team-a/buy/uid",
}
CLAIMS = {
    "source": "main",
    "app": "notes",
    "developer": "Acme",
    "buyer": "team-a",
    "amount": "4.99",
    "currency": "USD",
    "session": "cs_1",
    "paidAt": "2026-11-22T10:00:00Z",
}

# (message, body, accepted): the schema file and the operator's model must agree on every one.
CASES = [
    ("session-created", SESSION, True),
    ("session-created", {**SESSION, "expiresAt": "2026-11-22T10:30:00Z", "future": {"x": 1}}, True),
    ("session-created", {**SESSION, "checkoutURL": None}, False),
    ("session-created", {"session": "cs_1", "state": "open"}, False),
    ("session-created", {**SESSION, "session": 12345}, False),
    ("session-created", {**SESSION, "session": "../../admin"}, False),
    ("session-created", {**SESSION, "state": "pending"}, False),
    ("session-created", {**SESSION, "checkoutURL": "javascript:alert(1)"}, False),
    ("session", {"session": "cs_1", "state": "refunded", "refundedAt": "2026-11-23T00:00:00Z"}, True),
    ("session", {"session": "cs_1", "state": "paid", "message": "x" * 1025}, False),
    ("session", [SESSION], False),
    ("session-request", REQUEST, True),
    (
        "session-request",
        {**REQUEST, "developer": "Acme", "webhookURL": "https://km.example/webhooks/payment"},
        True,
    ),
    ("session-request", {k: v for k, v in REQUEST.items() if k != "developer"}, False),
    ("session-request", {**REQUEST, "amount": "free"}, False),
    ("session-request", {**REQUEST, "amount": 4.99}, False),
    ("receipt", {"protected": "eyJ9", "payload": "e30", "signature": "AAAA"}, True),
    ("receipt", {"protected": "eyJ9", "payload": "e30"}, False),
    ("receipt", {"protected": "not base64url!", "payload": "e30", "signature": "AAAA"}, False),
    ("receipt-header", {"alg": "EdDSA", "kid": "2026-11"}, True),
    ("receipt-header", {"alg": "none"}, False),
    ("receipt-claims", CLAIMS, True),
    ("receipt-claims", {**CLAIMS, "developer": None}, True),
    ("receipt-claims", {**CLAIMS, "amount": 4.99}, False),
    ("receipt-claims", {k: v for k, v in CLAIMS.items() if k != "paidAt"}, False),
    ("webhook", {"session": "cs_1", "state": "paid"}, True),
    ("webhook", {"session": "cs_1"}, True),
    ("webhook", {"state": "paid"}, False),
    ("error", {"error": "no such session"}, True),
    ("error", {"error": 404}, False),
]


@pytest.mark.parametrize(
    ("name", "body", "accepted"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_the_schema_files_and_the_operator_agree(name: str, body: Any, accepted: bool) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    by_schema = jsonschema.Draft202012Validator(schema).is_valid(body)
    try:
        protocol.parse(protocol.MESSAGES[name], json.dumps(body).encode())
        by_operator = True
    except protocol.InvalidMessage:
        by_operator = False
    assert (by_schema, by_operator) == (accepted, accepted)


def test_a_refusal_names_the_fields_never_their_values() -> None:
    with pytest.raises(protocol.InvalidMessage) as caught:
        protocol.parse(
            protocol.SessionCreated, json.dumps({**SESSION, "session": "secret-ish value!"}).encode()
        )
    assert "session" in str(caught.value)
    assert "secret-ish" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "clipped"),
    [("fine", "fine"), ("two\nlines\r\x00", "two lines"), ("x" * 300, "x" * 199 + "…")],
)
def test_clip(text: str, clipped: str) -> None:
    assert protocol.clip(text) == clipped
