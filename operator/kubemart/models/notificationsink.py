"""NotificationSink: where a namespace's Kubemart Events are posted as CloudEvents (docs/notifications.md)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from kubemart.models.resource import KindInfo, Model, PrinterColumn, ReconciledStatus, Resource


class NotifiedKind(StrEnum):
    """A kind whose Events a sink may ask for."""

    APP_INSTALL = "AppInstall"
    PAYMENT = "Payment"
    MARKET_SOURCE = "MarketSource"
    """Cluster-scoped: only sinks in the operator's namespace receive these."""
    NOTIFICATION_SINK = "NotificationSink"


class Severity(StrEnum):
    """The least severe Event sent."""

    NORMAL = "Normal"
    """Every Event (Normal and Warning)."""
    WARNING = "Warning"
    """Only Warning Events: failures, drift, revoked licences."""


class SinkSecretReference(Model):
    """A Secret in the sink's own namespace (a tenant never names another's)."""

    name: str = Field(
        description="Name of the Secret. Key `hmacKey`: the body is signed with HMAC-SHA256 in the "
        "X-Kubemart-Signature header (`sha256=<hex>`); key `token`: sent as `Authorization: Bearer`.",
        min_length=1,
        max_length=253,
    )


class NotificationSinkSpec(Model):
    """Where to post, how to sign, and which Events."""

    url: str = Field(
        description="The receiver, https:// (http:// only when the operator allows it). Addresses that "
        "resolve to loopback, link-local or private ranges are refused unless the operator allows them.",
        pattern=r"^https?://[^\s]+$",
        max_length=2048,
    )
    secret_ref: SinkSecretReference | None = Field(
        default=None, description="A Secret with `hmacKey` and/or `token`; none: requests are unsigned."
    )
    kinds: list[NotifiedKind] = Field(
        default_factory=list, description="Only Events about these kinds; empty: every kind.", max_length=8
    )
    namespaces: list[str] = Field(
        default_factory=list,
        description="Only Events about objects in these namespaces; empty: all the sink may see. A sink "
        "outside the operator's namespace only ever sees its own namespace.",
        max_length=64,
    )
    reasons: list[str] = Field(
        default_factory=list,
        description="Only Events with these reasons (e.g. Installed, InstallFailed, DriftCorrected, "
        "Verified, Refunded); empty: every reason.",
        max_length=64,
    )
    severity: Severity = Field(
        default=Severity.NORMAL, description="Normal: every Event; Warning: only warnings."
    )
    suspend: bool = Field(default=False, description="Queue nothing and post nothing while true.")


class LastDelivery(Model):
    """The last Event the receiver accepted."""

    time: datetime = Field(description="When it was accepted.")
    reason: str = Field(description="The Event's reason.", max_length=256)
    http_status: int = Field(alias="httpStatus", description="The receiver's answer.")


class LastFailure(Model):
    """The last failed attempt."""

    time: datetime = Field(description="When it failed.")
    message: str = Field(description="What went wrong (no secrets, cut short).", max_length=1024)


class NotificationSinkStatus(ReconciledStatus):
    """Written only by the operator, at most every few seconds."""

    last_delivery: LastDelivery | None = Field(default=None, description="The last Event delivered.")
    failures: int = Field(default=0, description="Consecutive failed attempts; 0 after a delivery.")
    last_failure: LastFailure | None = Field(default=None, description="The last failed attempt.")
    delivered: int = Field(default=0, description="Events delivered since the operator started.")
    dropped: int = Field(
        default=0,
        description="Events dropped since the operator started: the queue was full (oldest first) or "
        "the receiver refused one for good (4xx).",
    )
    queued: int = Field(default=0, description="Events waiting to be delivered.")


class NotificationSink(Resource):
    """A receiver of Kubemart Events (installs, failures, drift, payments, refunds) as CloudEvents."""

    info = KindInfo(
        kind="NotificationSink",
        plural="notificationsinks",
        singular="notificationsink",
        short_names=("sink",),
        scope="Namespaced",
        printer_columns=(
            PrinterColumn("URL", ".spec.url", priority=1),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn("Delivered", ".status.delivered", type="integer"),
            PrinterColumn("Failures", ".status.failures", type="integer"),
        ),
    )
    spec: NotificationSinkSpec
    status: NotificationSinkStatus = Field(default_factory=NotificationSinkStatus)
