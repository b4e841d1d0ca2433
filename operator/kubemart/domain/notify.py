"""Notifications, pure: which sinks an Event reaches, the CloudEvent that carries it, what a URL may be.

Tenancy (docs/security.md, "Notifications"): a sink sees Events about objects of its own namespace
only; sinks in the operator's (admin) namespace may see every namespace's and the cluster-scoped
kinds' (MarketSource). An Event's data is what `kubectl describe` shows anyway: kind, name, reason,
type and message, which the operator writes without values, secrets or receipts.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent

SIGNATURE_HEADER = "X-Kubemart-Signature"
TYPE_PREFIX = "io.kubemart"


@dataclass(frozen=True)
class Notice:
    """One Event the operator posted, as sinks get it. `id` is the Event's own: the same on every retry."""

    id: str
    time: datetime
    kind: str
    namespace: str
    """"" for a cluster-scoped object."""
    name: str
    reason: str
    type: str
    """Normal or Warning."""
    message: str


@dataclass(frozen=True)
class Filters:
    """What one sink asked for; empty sets mean "every"."""

    namespace: str
    admin: bool
    """The sink is in the operator's namespace: it may see other namespaces and cluster-scoped kinds."""
    kinds: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    warnings_only: bool = False


def visible(f: Filters, n: Notice) -> bool:
    """Pure: tenancy alone. A tenant's sink sees its own namespace; the admin namespace's sinks see all."""
    return f.admin or (n.namespace != "" and n.namespace == f.namespace)


def wants(f: Filters, n: Notice) -> bool:
    """Pure: the sink may see the notice, and its filters keep it."""
    if not visible(f, n):
        return False
    if f.kinds and n.kind not in f.kinds:
        return False
    if f.namespaces and n.namespace not in f.namespaces:
        return False
    if f.reasons and n.reason not in f.reasons:
        return False
    return not (f.warnings_only and n.type != "Warning")


def _segment(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum()) or "event"


def cloud_event(n: Notice) -> tuple[dict[str, str], bytes]:
    """Pure: the headers and body of the structured-mode CloudEvent (application/cloudevents+json)."""
    kind = _segment(n.kind)
    where = f"/namespaces/{n.namespace}" if n.namespace else ""
    attributes: dict[str, Any] = {
        "id": n.id,
        "type": f"{TYPE_PREFIX}.{kind}.{_segment(n.reason)}",
        "source": f"{where}/{kind}/{n.name}",
        "subject": n.name,
        "time": n.time,
        "datacontenttype": "application/json",
    }
    data = {
        "kind": n.kind,
        "namespace": n.namespace,
        "name": n.name,
        "reason": n.reason,
        "type": n.type,
        "message": n.message,
    }
    message = to_structured_event(CloudEvent(attributes, data))
    return dict(message.headers), message.body


def signature(key: bytes, body: bytes) -> str:
    """Pure: the X-Kubemart-Signature value, `sha256=<hex HMAC-SHA256 of the body>`."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def url_problem(url: str, *, allow_http: bool) -> str | None:
    """Pure: what is wrong with a sink URL before any lookup, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        return f"spec.url {url!r} is not a URL ({exc})"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"spec.url {url!r} must be https://host/path"
    if parts.scheme == "http" and not allow_http:
        return f"spec.url {url!r} is http://; use https:// (the operator does not allow plain http)"
    if parts.username or parts.password:
        return "spec.url must not carry credentials; put a token in the Secret of spec.secretRef"
    return None


def address_refused(address: str, *, allow_private: bool) -> bool:
    """Pure: an address a tenant's URL must not reach (link-local always; loopback,
    private and reserved ranges unless `allow_private`)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
        return True  # link-local holds cloud metadata endpoints: never, whatever the setting
    return not allow_private and not ip.is_global
