"""The payment-gateway protocol's messages (docs/payment-gateway.md), as the one source of their schemas.

Each message is a strict pydantic model: the operator validates every gateway reply and webhook
with it, and `python -m kubemart.domain.gateway_protocol docs/payment-gateway` writes the JSON
Schema files the doc publishes (a test fails when they are stale), so the doc and the code cannot
disagree. Pure: a size bound, then pydantic-core's parser (Rust; it refuses nesting past 200
levels instead of recursing). Unknown fields are allowed everywhere (a newer gateway may send more)
and ignored.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SESSION_ID = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,199}$"
"""Session ids go into URL paths: unreserved characters only, so none can point elsewhere."""
AMOUNT = r"^[0-9]+(\.[0-9]{1,8})?$"
CURRENCY = r"^[A-Z]{3}$"
HTTP_URL = r"^https?://[^\s]+$"
B64URL = r"^[A-Za-z0-9_-]*$"
MAX_REPLY_BYTES = 64 * 1024
MAX_DEPTH = 200
"""pydantic-core's own nesting limit (it parses in Rust, iteratively for us): deeper is refused."""
IDEMPOTENCY_HEADER = "Idempotency-Key"


class SessionState(StrEnum):
    """Where a checkout session is. `open` may become any other; `paid` may become `refunded`; the rest are final."""

    OPEN = "open"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELED = "canceled"
    REFUNDED = "refunded"


class Message(BaseModel):
    # Unknown fields are skipped by the parser without becoming Python objects: a 64 KiB reply of
    # them costs ~2 ms, where keeping them costs ~15 ms.
    model_config = ConfigDict(
        strict=True, extra="ignore", populate_by_name=True, json_schema_extra={"additionalProperties": True}
    )


class SessionRequest(Message):
    """POST {url}/sessions: the operator asks for a checkout session (header Idempotency-Key: the same key, the same session)."""

    source: str = Field(description="The MarketSource selling the app.", min_length=1, max_length=253)
    app: str = Field(description="The app bought.", min_length=1, max_length=253)
    developer: str | None = Field(description="The app's developer in the catalog; null when it names none.")
    amount: str = Field(description="The catalog's price, a decimal string.", pattern=AMOUNT, max_length=40)
    currency: str = Field(description="ISO 4217 code.", pattern=CURRENCY)
    buyer: str = Field(description="The Payment's namespace.", min_length=1, max_length=63)
    reference: str = Field(
        description="<namespace>/<name>/<uid> of the Payment: where to look when a person asks.",
        max_length=600,
    )
    webhook_url: str | None = Field(
        default=None,
        alias="webhookURL",
        description="Where to POST webhooks; sent only when the operator has a public URL (KUBEMART_WEBHOOK_PUBLIC_URL).",
        pattern=HTTP_URL,
        max_length=2048,
    )


class Session(Message):
    """A checkout session, as GET {url}/sessions/{session} and POST .../cancel answer it (200)."""

    session: str = Field(description="The session id, unique at the gateway.", pattern=SESSION_ID)
    state: SessionState = Field(description="Where the session is.")
    checkout_url: str | None = Field(
        default=None,
        alias="checkoutURL",
        description="Where the buyer pays.",
        pattern=HTTP_URL,
        max_length=2048,
    )
    expires_at: datetime | None = Field(
        default=None, alias="expiresAt", description="When an open session expires (RFC 3339)."
    )
    refunded_at: datetime | None = Field(
        default=None, alias="refundedAt", description="When the payment was refunded (RFC 3339)."
    )
    message: str | None = Field(default=None, description="A sentence for people.", max_length=1024)


class SessionCreated(Session):
    """The answer to POST {url}/sessions (201 new, or 200 for a key seen before): a session with its checkout URL."""

    checkout_url: str = Field(
        alias="checkoutURL", description="Where the buyer pays.", pattern=HTTP_URL, max_length=2048
    )


class Receipt(Message):
    """GET {url}/sessions/{session}/receipt (200 once paid): a JWS in flattened JSON serialization (RFC 7515)."""

    protected: str = Field(
        description="base64url of the JSON header (receipt-header).", pattern=B64URL, max_length=16384
    )
    payload: str = Field(
        description="base64url of the JSON claims (receipt-claims).", pattern=B64URL, max_length=16384
    )
    signature: str = Field(
        description="base64url of the Ed25519 signature of ASCII(protected + '.' + payload).",
        pattern=B64URL,
        max_length=16384,
    )


class ReceiptHeader(Message):
    """The receipt's protected header."""

    alg: Literal["EdDSA"] = Field(description="Always EdDSA (Ed25519, RFC 8037).")
    kid: str | None = Field(
        default=None,
        description="Which key signed: the source's keyID, or a retiredKeys[].keyID.",
        max_length=64,
    )


class ReceiptClaims(Message):
    """What the receipt states; every field must match the Payment for it to unlock anything."""

    source: str = Field(description="As in the session request.", max_length=253)
    app: str = Field(description="As in the session request.", max_length=253)
    developer: str | None = Field(description="As in the session request (null when it was null).")
    buyer: str = Field(description="As in the session request.", max_length=63)
    amount: str = Field(description="The amount paid, a decimal string.", pattern=AMOUNT, max_length=40)
    currency: str = Field(description="ISO 4217 code.", pattern=CURRENCY)
    session: str = Field(description="The session paid.", pattern=SESSION_ID)
    paid_at: datetime = Field(alias="paidAt", description="When it was paid (RFC 3339).")


class Webhook(Message):
    """POST <webhookURL> on the operator, signed (Kubemart-Signature): a session changed; look at it again."""

    session: str = Field(description="The session that changed.", pattern=SESSION_ID)
    state: SessionState | None = Field(
        default=None, description="Informative only: the operator reads the session from the gateway."
    )


class ErrorReply(Message):
    """The body of any 4xx or 5xx answer (optional; its text may reach a condition message, cut short)."""

    error: str = Field(description="What is wrong, for people.", max_length=1024)


MESSAGES: dict[str, type[Message]] = {
    "session-request": SessionRequest,
    "session-created": SessionCreated,
    "session": Session,
    "receipt": Receipt,
    "receipt-header": ReceiptHeader,
    "receipt-claims": ReceiptClaims,
    "webhook": Webhook,
    "error": ErrorReply,
}

M = TypeVar("M", bound=Message)


class InvalidMessage(ValueError):
    """A message that is not what the protocol says; the message names the first problems."""


def parse(model: type[M], data: bytes, *, max_bytes: int = MAX_REPLY_BYTES) -> M:
    """`data` as `model`: bounded (size, depth), JSON, and every field of the right type; else InvalidMessage."""
    if len(data) > max_bytes:
        raise InvalidMessage(f"the body is larger than {max_bytes} bytes")
    if not data.lstrip().startswith(b"{"):
        raise InvalidMessage("the body is not a JSON object")  # every message is one: refused unparsed
    try:
        message = model.model_validate_json(data, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any("recursion limit" in e["msg"] for e in errors):
            raise InvalidMessage(f"the body is nested deeper than {MAX_DEPTH} levels") from None
        if errors and errors[0]["type"] == "json_invalid":
            raise InvalidMessage(
                f"the body is not JSON ({errors[0]['msg'].removeprefix('Invalid JSON: ')})"
            ) from None
        raise InvalidMessage(describe(exc)) from None
    return message


def describe(exc: ValidationError, *, limit: int = 3) -> str:
    """The first problems of a validation, as `field: what` (never the values themselves)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "the body"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def idempotency_key(payment_uid: str) -> str:
    """The Idempotency-Key of a Payment's session create: the same Payment always asks for the same session."""
    return f"kubemart-payment-{payment_uid}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clip(text: str, limit: int = 200) -> str:
    """Text from outside, fit for a condition message or an Event: one line, at most `limit` characters."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _untitled(node: Any) -> Any:
    """pydantic titles every property after its Python name ("Checkouturl"): noise in a published schema."""
    if isinstance(node, dict):
        return {k: _untitled(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}
    if isinstance(node, list):
        return [_untitled(v) for v in node]
    return node


def schemas() -> dict[str, dict[str, Any]]:
    """Every message's JSON Schema (draft 2020-12), by file stem."""
    out = {}
    for name, model in MESSAGES.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        title = schema.pop("title")
        out[name] = {
            "$schema": SCHEMA_DIALECT,
            "$id": f"{name}.schema.json",
            "title": title,
            **_untitled(schema),
        }
    return out


def schema_files() -> dict[str, str]:
    """The files `docs/payment-gateway/` holds, by name."""
    return {f"{name}.schema.json": json.dumps(s, indent=2) + "\n" for name, s in schemas().items()}


def main(argv: list[str]) -> None:
    directory = Path(argv[0] if argv else "docs/payment-gateway")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in schema_files().items():
        (directory / name).write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
