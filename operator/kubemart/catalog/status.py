"""What a MarketSource's Ready condition says after a sync (pure)."""

from __future__ import annotations

from dataclasses import replace

from kubemart.domain import receipts
from kubemart.domain.bounds import ValueLimits, check_values
from kubemart.domain.clip import clip, one_line
from kubemart.domain.conditions import Summary, ready_of
from kubemart.models.marketsource import MarketSource, MarketSourceStatus
from kubemart.sources.base import SourceError

STALLING = frozenset({"UnsupportedSourceType", "InvalidRepositoryURL", "InvalidChartNames"})
"""Failures no retry can mend: only a new spec can."""
MAX_MESSAGE = 1000


def apps(count: int) -> str:
    return f"{count} app" if count == 1 else f"{count} apps"


def keep_note(message: str, status: MarketSourceStatus) -> str:
    """`message`, saying that the last good catalog stays when there is one."""
    if status.app_count:
        return f"{message} The last good catalog ({apps(status.app_count)}) is kept."
    return message


def syncing_summary(source: MarketSource) -> Summary:
    return Summary(
        None, "Syncing", f"Syncing the catalog from {clip(source.location(), 200)}.", reconciling=True
    )


def failure_summary(err: SourceError, status: MarketSourceStatus) -> Summary:
    """Ready=False with the source's reason; Stalled when only a new spec can help."""
    return Summary(
        False, err.reason, clip(keep_note(err.message, status), MAX_MESSAGE), stalled=err.reason in STALLING
    )


def with_note(summary: Summary, note: str | None) -> Summary:
    """`summary` with `note` added to its message, once."""
    if not note or note in summary.message:
        return summary
    return replace(summary, message=f"{summary.message} Note: {note}.")


def ready_summary(
    source: MarketSource,
    status: MarketSourceStatus,
    *,
    changed: bool,
    skipped: int = 0,
    taken: int = 0,
    versions: int = 0,
) -> Summary:
    """Ready=True after a sync; an unchanged catalog keeps the notes of the sync that read it."""
    message = f"{apps(status.app_count or 0)} from {clip(source.location(), 200)} at revision {(status.revision or '')[:19]}"
    if skipped:
        message += f"; {skipped} charts left out (see Events)"
    if versions:
        message += f"; {versions} versions left out (see Events)"
    if taken:
        message += f"; {taken} names are held by objects this source does not control (see Events)"
    if not changed:
        previous = ready_of(status.conditions)
        if previous is not None and previous.status == "True" and previous.reason == "Succeeded":
            return Summary(True, "Succeeded", previous.message)
    return Summary(True, "Succeeded", message + ".")


def key_problem(source: MarketSource) -> Summary | None:
    """Stalled when the payment gateway's public key cannot be read: no receipt could ever verify."""
    gateway = source.spec.payment
    if gateway is None:
        return None
    try:
        receipts.public_key_from(gateway.public_key)
    except receipts.InvalidReceipt as exc:
        return Summary(
            False,
            "InvalidPublicKey",
            f"spec.payment.publicKey cannot be used: {one_line(str(exc), 200)}. Give the gateway's Ed25519 "
            "public key as base64 (standard or URL-safe) of its 32 raw bytes, or in another format "
            "docs/payment-gateway.md lists. The catalog is synced, but its paid apps cannot be unlocked "
            "until the key is fixed.",
            stalled=True,
        )
    return None


def values_problem(source: MarketSource, limits: ValueLimits) -> Summary | None:
    """Stalled when spec.values is beyond the values bounds: every app of the source would refuse it."""
    if not source.spec.values:
        return None
    refused = check_values(
        source.spec.values,
        max_depth=limits.max_depth,
        max_nodes=limits.max_nodes,
        max_bytes=limits.max_bytes,
        what="spec.values",
    )
    if refused is None:
        return None
    return Summary(
        False,
        "InvalidValues",
        f"{one_line(refused, 400)}. The catalog is synced, but its apps cannot install or upgrade until "
        "spec.values is made smaller or shallower.",
        stalled=True,
    )
