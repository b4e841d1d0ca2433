"""The Payment state machine (pure): which phase follows which event, and which are refused.

Verified is reachable only through a receipt whose signature and fields checked out, so the gate
on paid apps trusts a single phase. A free app's Payment is refused (Failed, reason AppIsFree)
rather than Verified without a receipt: Verified always means a signed receipt exists. An app
that becomes free ends the Payments not yet paid (their checkout is canceled first) and leaves
Paid and Verified ones as they are: money taken is always followed through to a receipt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from enum import StrEnum

from kubemart.domain.conditions import STALLED, Summary, ready_of
from kubemart.domain.gateway_protocol import SessionState
from kubemart.models.payment import PaymentPhase as P
from kubemart.models.payment import PaymentStatus
from kubemart.models.resource import Condition, ConditionStatus


class PaymentEvent(StrEnum):
    SESSION_CREATED = "SessionCreated"
    SESSION_PAID = "SessionPaid"
    SESSION_FAILED = "SessionFailed"
    SESSION_EXPIRED = "SessionExpired"
    SESSION_CANCELED = "SessionCanceled"
    RECEIPT_VERIFIED = "ReceiptVerified"
    RECEIPT_REJECTED = "ReceiptRejected"
    REFUNDED = "Refunded"
    APP_IS_FREE = "AppIsFree"
    CHECKOUT_FAILED = "CheckoutFailed"
    """The gateway refused to open a checkout session (not a transient error)."""


E = PaymentEvent

TERMINAL = frozenset({P.FAILED, P.EXPIRED, P.CANCELED, P.REFUNDED})

TRANSITIONS: dict[tuple[P, PaymentEvent], P] = {
    (P.PENDING, E.SESSION_CREATED): P.AWAITING_PAYMENT,
    (P.PENDING, E.APP_IS_FREE): P.FAILED,
    # Only once the gateway canceled the checkout (or said it was not paid): see services/payments.py.
    (P.AWAITING_PAYMENT, E.APP_IS_FREE): P.FAILED,
    (P.PENDING, E.CHECKOUT_FAILED): P.FAILED,
    (P.AWAITING_PAYMENT, E.SESSION_PAID): P.PAID,
    (P.AWAITING_PAYMENT, E.SESSION_FAILED): P.FAILED,
    (P.AWAITING_PAYMENT, E.SESSION_EXPIRED): P.EXPIRED,
    (P.AWAITING_PAYMENT, E.SESSION_CANCELED): P.CANCELED,
    # A gateway may report paid and refunded between two polls: the receipt still has to be checked.
    (P.AWAITING_PAYMENT, E.REFUNDED): P.REFUNDED,
    (P.PAID, E.RECEIPT_VERIFIED): P.VERIFIED,
    (P.PAID, E.RECEIPT_REJECTED): P.FAILED,
    (P.PAID, E.REFUNDED): P.REFUNDED,
    (P.VERIFIED, E.REFUNDED): P.REFUNDED,
}


SESSION_EVENTS: dict[SessionState, PaymentEvent] = {
    SessionState.PAID: E.SESSION_PAID,
    SessionState.FAILED: E.SESSION_FAILED,
    SessionState.EXPIRED: E.SESSION_EXPIRED,
    SessionState.CANCELED: E.SESSION_CANCELED,
    SessionState.REFUNDED: E.REFUNDED,
}
"""What a session's state means for its Payment; `open` means nothing happened yet."""


class IllegalTransition(ValueError):
    def __init__(self, phase: P, event: PaymentEvent) -> None:
        super().__init__(f"a Payment in phase {phase.value} cannot take the event {event.value}")
        self.phase = phase
        self.event = event


def next_phase(phase: P, event: PaymentEvent) -> P:
    """Pure: the phase after `event`, or IllegalTransition. Repeating the event that led here is a no-op."""
    target = TRANSITIONS.get((phase, event))
    if target is not None:
        return target
    if any(to == phase and ev == event for (_, ev), to in TRANSITIONS.items()):
        return phase  # a webhook delivered twice, or a poll that saw the same state again
    raise IllegalTransition(phase, event)


def unlocks(phase: P | None) -> bool:
    """Only a verified receipt opens the gate."""
    return phase is P.VERIFIED


def after_session(phase: P, state: SessionState) -> P:
    """Pure: the phase once the gateway says the session is in `state`.

    Verified stays Verified while the session says paid; anything a session cannot do (a paid one
    reopening, a verified one failing) is IllegalTransition, which the caller reports as the gateway
    breaking the protocol rather than acting on it.
    """
    event = SESSION_EVENTS.get(state)
    if event is None:  # open
        if phase is P.AWAITING_PAYMENT:
            return phase
        raise IllegalTransition(phase, E.SESSION_CREATED)
    if phase is P.VERIFIED and event is E.SESSION_PAID:
        return phase
    return next_phase(phase, event)


SECRET_SUFFIX = "-receipt"
MAX_NAME = 253
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def receipt_secret_name(payment: str) -> str:
    """The receipt Secret of a Payment: `<payment>-receipt`, hash-shortened to stay a valid name (≤ 253)."""
    name = f"{payment}{SECRET_SUFFIX}"
    if len(name) <= MAX_NAME:
        return name
    keep = MAX_NAME - len(SECRET_SUFFIX) - 11  # "-" and ten hex digits
    return f"{payment[:keep].rstrip('-.')}-{_digest(payment)}{SECRET_SUFFIX}"


def label_value(text: str) -> str:
    """`text` as a label value (≤ 63, alphanumeric at both ends); hash-shortened when it is not one."""
    if len(text) <= 63 and _LABEL_VALUE.fullmatch(text):
        return text
    head = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:52].strip("-_.")
    return f"{head}-{_digest(text)}" if head else _digest(text)


def summary(status: PaymentStatus) -> Summary:
    """Pure: what the Payment's conditions say in its phase."""
    phase = status.phase or P.PENDING
    quote = f"{status.quote.amount} {status.quote.currency}" if status.quote else "the price"
    if phase is P.VERIFIED:
        return Summary(True, "Verified", f"Paid {quote}; the receipt verified.")
    if phase is P.AWAITING_PAYMENT:
        until = f" before {status.expires_at.isoformat()}" if status.expires_at else ""
        return Summary(
            False, "AwaitingPayment", f"Pay {quote} at {status.checkout_url}{until}.", reconciling=True
        )
    if phase is P.PAID:
        return Summary(None, "Paid", "Paid; checking the receipt.", reconciling=True)
    if phase is P.PENDING:
        return Summary(None, "Pending", "Opening a checkout session.", reconciling=True)
    return Summary(
        False,
        phase.value,
        f"The payment is {phase.value}; create a new Payment to buy the app.",
        stalled=True,
    )


def terminal_summary(previous: Sequence[Condition], status: PaymentStatus) -> Summary:
    """Pure: a terminal Payment keeps the reason it ended with (AppIsFree, CheckoutRefused, ...)."""
    ready = ready_of(previous)
    if (
        ready is not None
        and ready.status is ConditionStatus.FALSE
        and any(c.type == STALLED for c in previous)
    ):
        return Summary(False, ready.reason, ready.message, stalled=True)
    return summary(status)
