"""Notifications, pure: tenancy and filters, the CloudEvent, the signature, which URLs and addresses."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from kubemart.domain.notify import (
    Filters,
    Notice,
    address_refused,
    cloud_event,
    signature,
    url_problem,
    wants,
)
from kubemart.models.notificationsink import NotificationSinkSpec
from kubemart.services.sinks import filters_of

WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def notice(
    namespace: str = "team-a", kind: str = "AppInstall", reason: str = "Installed", type_: str = "Normal"
) -> Notice:
    return Notice("e1", WHEN, kind, namespace, "web", reason, type_, "Installed hello 0.1.0.")


TENANT = Filters(namespace="team-a", admin=False)
ADMIN = Filters(namespace="kubemart-system", admin=True)


@pytest.mark.parametrize(
    ("filters", "n", "wanted"),
    [
        pytest.param(TENANT, notice(), True, id="own namespace"),
        pytest.param(TENANT, notice("team-b"), False, id="another tenant's namespace never"),
        pytest.param(TENANT, notice("", kind="MarketSource"), False, id="cluster-scoped: not for tenants"),
        pytest.param(ADMIN, notice("team-b"), True, id="admin sees every namespace"),
        pytest.param(ADMIN, notice("", kind="MarketSource"), True, id="admin sees cluster-scoped"),
        pytest.param(
            Filters(namespace="x", admin=True, namespaces=frozenset({"team-a"})),
            notice("team-b"),
            False,
            id="admin namespaces filter",
        ),
        pytest.param(
            Filters(namespace="team-a", admin=False, kinds=frozenset({"Payment"})),
            notice(),
            False,
            id="kinds",
        ),
        pytest.param(
            Filters(namespace="team-a", admin=False, reasons=frozenset({"Installed"})),
            notice(),
            True,
            id="reason kept",
        ),
        pytest.param(
            Filters(namespace="team-a", admin=False, reasons=frozenset({"Refunded"})),
            notice(),
            False,
            id="reason dropped",
        ),
        pytest.param(
            Filters(namespace="team-a", admin=False, warnings_only=True),
            notice(),
            False,
            id="warnings only: Normal dropped",
        ),
        pytest.param(
            Filters(namespace="team-a", admin=False, warnings_only=True),
            notice(type_="Warning"),
            True,
            id="warnings only: Warning kept",
        ),
    ],
)
def test_who_hears_what(filters: Filters, n: Notice, wanted: bool) -> None:
    assert wants(filters, n) is wanted


def test_a_tenants_namespaces_filter_cannot_reach_other_namespaces() -> None:
    spec = NotificationSinkSpec.model_validate(
        {"url": "https://hooks.example.com/x", "namespaces": ["team-b"]}
    )
    tenant = filters_of("team-a", spec, admin_namespace="kubemart-system")
    assert not wants(tenant, notice("team-b"))
    assert wants(tenant, notice("team-a"))
    admin = filters_of("kubemart-system", spec, admin_namespace="kubemart-system")
    assert wants(admin, notice("team-b"))
    assert not wants(admin, notice("team-a"))


def test_the_cloudevent_is_structured_json_with_a_stable_id_and_nothing_else() -> None:
    headers, body = cloud_event(notice())
    assert headers["content-type"] == "application/cloudevents+json"
    doc = json.loads(body)
    assert doc["specversion"] == "1.0"
    assert doc["id"] == "e1"
    assert doc["type"] == "io.kubemart.appinstall.installed"
    assert doc["source"] == "/namespaces/team-a/appinstall/web"
    assert doc["subject"] == "web"
    assert doc["time"].startswith("2026-11-29T12:00:00")
    assert doc["data"] == {
        "kind": "AppInstall",
        "namespace": "team-a",
        "name": "web",
        "reason": "Installed",
        "type": "Normal",
        "message": "Installed hello 0.1.0.",
    }
    assert cloud_event(notice()) == (headers, body), "a retry sends the same bytes"
    _, cluster = cloud_event(notice("", kind="MarketSource", reason="Synced"))
    assert json.loads(cluster)["source"] == "/marketsource/web"


def test_the_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a": 1}'
    assert signature(b"key", body) == "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("url", "allow_http", "problem"),
    [
        ("https://hooks.example.com/x", False, None),
        ("http://hooks.example.com/x", False, "http://"),
        ("http://hooks.example.com/x", True, None),
        ("https://user:pw@hooks.example.com/x", False, "credentials"),
        ("https://hooks.example.com:99999/x", False, "not a URL"),
        ("ftp://hooks.example.com/x", False, "https://host/path"),
    ],
)
def test_urls(url: str, allow_http: bool, problem: str | None) -> None:
    said = url_problem(url, allow_http=allow_http)
    assert (said is None) if problem is None else (said is not None and problem in said), said


@pytest.mark.parametrize(
    ("address", "refused", "refused_when_allowed"),
    [
        ("93.184.216.34", False, False),
        ("127.0.0.1", True, False),
        ("10.96.0.1", True, False),
        ("192.168.1.1", True, False),
        ("100.64.0.1", True, False),
        ("::1", True, False),
        ("fd00::1", True, False),
        ("::ffff:10.0.0.1", True, False),
        ("169.254.169.254", True, True),
        ("fe80::1%eth0", True, True),
        ("0.0.0.0", True, True),
    ],
)
def test_addresses(address: str, refused: bool, refused_when_allowed: bool) -> None:
    assert address_refused(address, allow_private=False) is refused
    assert address_refused(address, allow_private=True) is refused_when_allowed
