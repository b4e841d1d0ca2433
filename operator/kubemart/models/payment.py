"""Payment: a purchase of a paid app, namespaced (the namespace is the buyer)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from kubemart.models.marketapp import Price
from kubemart.models.resource import KindInfo, Model, PrinterColumn, ReconciledStatus, Resource


class PaymentPhase(StrEnum):
    PENDING = "Pending"
    AWAITING_PAYMENT = "AwaitingPayment"
    PAID = "Paid"
    VERIFIED = "Verified"
    FAILED = "Failed"
    EXPIRED = "Expired"
    CANCELED = "Canceled"
    REFUNDED = "Refunded"


class PaymentSpec(Model):
    """Which app to buy; the price is taken from the catalog."""

    source: str = Field(description="The MarketSource selling the app.", min_length=1, max_length=253)
    app: str = Field(description="The app to buy.", min_length=1, max_length=253)


class ReceiptReference(Model):
    """The Secret holding the verified receipt."""

    name: str = Field(
        description="Name of the Secret, in the Payment's namespace, holding the verified receipt.",
        max_length=253,
    )


class PaymentStatus(ReconciledStatus):
    """Where the purchase is; written only by the operator."""

    phase: PaymentPhase | None = Field(default=None, description="Where the purchase is.")
    quote: Price | None = Field(default=None, description="The price, copied from the catalog.")
    checkout_url: str | None = Field(
        default=None, alias="checkoutURL", description="Where the buyer pays.", max_length=2048
    )
    session_id: str | None = Field(
        default=None, alias="sessionID", description="The gateway's checkout session.", max_length=200
    )
    expires_at: datetime | None = Field(default=None, description="When the checkout session expires.")
    receipt_secret_ref: ReceiptReference | None = Field(default=None, description="The verified receipt.")


class Payment(Resource):
    """A purchase of a paid app; the price comes from the catalog, never from the user."""

    info = KindInfo(
        kind="Payment",
        plural="payments",
        singular="payment",
        short_names=("pay",),
        scope="Namespaced",
        printer_columns=(
            PrinterColumn("App", ".spec.app"),
            PrinterColumn("Amount", ".status.quote.amount"),
            PrinterColumn("Phase", ".status.phase"),
        ),
    )
    spec: PaymentSpec
    status: PaymentStatus = Field(default_factory=PaymentStatus)
