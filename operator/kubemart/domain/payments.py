"""The Payment state machine (pure): which phase follows which event, and which are refused.

Verified is reachable only through a receipt whose signature and fields checked out, so the gate
on paid apps trusts a single phase. A free app's Payment is refused (Failed, reason AppIsFree)
rather than Verified without a receipt: Verified always means a signed receipt exists.
"""

from __future__ import annotations

from enum import StrEnum

from kubemart.models.payment import PaymentPhase as P


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
