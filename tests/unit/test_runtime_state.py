"""The runtime view's snapshot: what admins see, filtered, counted, and never a secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubemart.runtime.runtime_state import Components, Filters, health_of, redact, snapshot

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(hours=1, minutes=2, seconds=3)


def cond(
    type_: str, status: str, reason: str = "Succeeded", message: str = "ok.", generation: int = 1
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-11-22T11:00:00Z",
    }


def app(
    namespace: str,
    name: str,
    phase: str | None,
    *conditions: dict[str, Any],
    generation: int = 1,
    spec: dict[str, Any] | None = None,
    **status: Any,
) -> dict[str, Any]:
    return {
        "kind": "AppInstall",
        "metadata": {"namespace": namespace, "name": name, "generation": generation},
        "spec": {"source": "demo", "app": name, **(spec or {})},
        "status": {"phase": phase, "conditions": list(conditions), **status},
    }


def source(name: str, ready: bool, **status: Any) -> dict[str, Any]:
    return {
        "kind": "MarketSource",
        "metadata": {"name": name, "generation": 1},
        "spec": {"url": f"https://user:hunter2@charts.example.com/{name}", "type": "helm"},
        "status": {
            "conditions": [
                cond("Ready", "True" if ready else "False", "Synced" if ready else "IndexFetchFailed")
            ],
            **status,
        },
    }


def payment(namespace: str, name: str, phase: str) -> dict[str, Any]:
    return {
        "kind": "Payment",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"source": "shop", "app": "notes"},
        "status": {
            "phase": phase,
            "quote": {"amount": "4.99", "currency": "USD"},
            "checkoutURL": "https://pay.example.com/c/cs_secret_session",
            "sessionID": "cs_secret_session",
            "receiptSecretRef": {"name": "buy-receipt"},
        },
    }


COMPONENTS = Components(
    version="0.1.0",
    started_at=STARTED,
    controllers={
        "appinstall": {"objects": 4, "queued": 1, "inFlight": 1},
        "marketsource": {"objects": 2, "queued": 0, "inFlight": 1},
    },
    helm_slots_in_use=1,
    helm_slots_max=16,
    drift_watches_alive=10,
    drift_watches_total=10,
    webhook_server=True,
)

SOURCES = [
    source("demo", True, revision="sha256:abc", lastSyncTime="2026-11-22T11:58:00Z", appCount=7),
    source("broken", False, lastSyncTime="2026-11-22T11:59:00Z"),
]
APPS = [
    app(
        "team-a",
        "wiki",
        "Running",
        cond("Ready", "True"),
        installedVersion="0.9.1",
        corrections={
            "count": 2,
            "lastTime": "2026-11-22T11:50:00Z",
            "lastSummary": "recreated ConfigMap wiki-config",
        },
    ),
    app(
        "team-a",
        "blog",
        "Installing",
        cond("Ready", "Unknown", "Installing", "installing 1.0.0."),
        cond("Reconciling", "True", "Installing"),
        operation={
            "type": "install",
            "phase": "Running",
            "startedAt": "2026-11-22T11:59:30Z",
            "attempt": 1,
            "message": "helm install",
        },
        spec={"values": {"password": "values-secret"}},
    ),
    app(
        "team-b",
        "ghost",
        "Failed",
        cond("Ready", "False", "AppNotFound", "No app ghost in source demo."),
        cond("Stalled", "True", "AppNotFound", "No app ghost in source demo."),
    ),
    app(
        "team-b",
        "notes",
        "AwaitingPayment",
        cond("Ready", "False", "PaymentRequired", "create a Payment."),
        corrections={"count": 1, "lastTime": "2026-11-22T11:55:00Z", "lastSummary": "scaled notes back to 1"},
    ),
]
PAYMENTS = [payment("team-b", "buy", "AwaitingPayment"), payment("team-a", "old", "Verified")]


def take(filters: Filters | None = None) -> dict[str, Any]:
    return snapshot(
        sources=SOURCES,
        apps=APPS,
        payments=PAYMENTS,
        components=COMPONENTS,
        filters=filters or Filters(),
        now=NOW,
    )


def test_the_snapshot_lists_sources_with_their_sync_state() -> None:
    s = take()
    assert [x["name"] for x in s["sources"]] == ["broken", "demo"]
    demo = s["sources"][1]
    assert demo | {"message": None} == {
        "name": "demo",
        "type": "helm",
        "url": "https://***@charts.example.com/demo",
        "suspended": False,
        "ready": True,
        "reason": "Synced",
        "message": None,
        "revision": "sha256:abc",
        "lastSyncTime": "2026-11-22T11:58:00Z",
        "appCount": 7,
    }
    assert s["summary"]["sources"] == {"total": 2, "ready": 1, "notReady": 1}
    assert s["summary"]["catalogSize"] == 7


def test_apps_carry_phase_health_version_operation_and_corrections() -> None:
    apps = {a["name"]: a for a in take()["apps"]}
    assert apps["wiki"]["phase"] == "Running"
    assert apps["wiki"]["health"] == "Healthy"
    assert apps["wiki"]["installedVersion"] == "0.9.1"
    assert apps["blog"]["operation"] == {
        "type": "install",
        "phase": "Running",
        "startedAt": "2026-11-22T11:59:30Z",
        "attempt": 1,
        "message": "helm install",
    }
    assert apps["blog"]["health"] == "Progressing"
    assert apps["ghost"]["health"] == "Stalled"
    assert apps["ghost"]["stalled"]["reason"] == "AppNotFound"
    assert apps["notes"]["health"] == "Degraded"
    assert apps["notes"]["ready"]["reason"] == "PaymentRequired"


def test_summary_counts_apps_payments_and_operations() -> None:
    summary = take()["summary"]
    assert summary["apps"]["total"] == 4
    assert summary["apps"]["byPhase"] == {"AwaitingPayment": 1, "Failed": 1, "Installing": 1, "Running": 1}
    assert summary["apps"]["byHealth"] == {"Degraded": 1, "Healthy": 1, "Progressing": 1, "Stalled": 1}
    assert summary["payments"] == {"total": 2, "byPhase": {"AwaitingPayment": 1, "Verified": 1}}
    assert summary["operationsInFlight"] == 1
    assert summary["corrections"] == 3


def test_apps_are_grouped_by_namespace() -> None:
    assert take()["namespaces"] == {
        "team-a": {"apps": 2, "byPhase": {"Installing": 1, "Running": 1}},
        "team-b": {"apps": 2, "byPhase": {"AwaitingPayment": 1, "Failed": 1}},
    }


def test_recent_corrections_newest_first() -> None:
    assert [(c["name"], c["count"]) for c in take()["corrections"]] == [("notes", 1), ("wiki", 2)]


def test_operator_components() -> None:
    op = take()["operator"]
    assert op["version"] == "0.1.0"
    assert op["uptimeSeconds"] == 3723
    assert op["controllers"]["appinstall"] == {"objects": 4, "queued": 1, "inFlight": 1}
    assert op["helm"] == {"slotsInUse": 1, "slotsMax": 16}
    assert op["driftWatches"] == {"alive": 10, "total": 10}
    assert op["webhookServer"] == {"running": True}
    assert op["catalogSync"] == {
        "sources": 2,
        "ready": 1,
        "syncing": 1,
        "lastSyncTime": "2026-11-22T11:59:00Z",
    }


@pytest.mark.parametrize(
    ("query", "apps", "payments"),
    [
        pytest.param(
            {},
            ["team-a/blog", "team-a/wiki", "team-b/ghost", "team-b/notes"],
            ["team-a/old", "team-b/buy"],
            id="no filter",
        ),
        pytest.param({"namespace": "team-a"}, ["team-a/blog", "team-a/wiki"], ["team-a/old"], id="namespace"),
        pytest.param({"app": "wiki"}, ["team-a/wiki"], [], id="app by name"),
        pytest.param(
            {"app": "notes"}, ["team-b/notes"], ["team-a/old", "team-b/buy"], id="app matches payments of it"
        ),
        pytest.param({"phase": "awaitingpayment"}, ["team-b/notes"], ["team-b/buy"], id="phase ignores case"),
        pytest.param({"namespace": "team-b", "phase": "Failed"}, ["team-b/ghost"], [], id="filters combine"),
        pytest.param({"namespace": "nobody"}, [], [], id="nothing matches"),
    ],
)
def test_filters(query: dict[str, str], apps: list[str], payments: list[str]) -> None:
    s = take(Filters.from_query(query))
    assert [f"{a['namespace']}/{a['name']}" for a in s["apps"]] == apps
    assert [f"{p['namespace']}/{p['name']}" for p in s["payments"]] == payments
    assert s["summary"]["apps"]["total"] == len(apps), "the summary counts what the filters kept"
    assert len(s["sources"]) == 2, "sources are cluster-scoped: always listed"
    assert s["filters"] == {k: v for k, v in query.items() if v}


def test_no_secret_leaves_the_operator() -> None:
    text = json.dumps(take())
    for secret in ("hunter2", "values-secret", "cs_secret_session", "buy-receipt", "checkout"):
        assert secret not in text
    pay = take()["payments"][1]
    assert pay == {
        "namespace": "team-b",
        "name": "buy",
        "source": "shop",
        "app": "notes",
        "phase": "AwaitingPayment",
        "amount": "4.99",
        "currency": "USD",
    }


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:pw@host/x", "https://***@host/x"),
        ("fetch of oci://token@registry.example failed", "fetch of oci://***@registry.example failed"),
        ("https://host/a@b", "https://host/a@b"),
        ("no url here", "no url here"),
        (None, None),
    ],
)
def test_credentials_in_urls_are_redacted(text: str | None, shown: str | None) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    ("body", "health"),
    [
        pytest.param(app("n", "a", "Running", cond("Ready", "True")), "Healthy", id="ready"),
        pytest.param(
            app("n", "a", "Running", cond("Ready", "True"), generation=2),
            "Progressing",
            id="ready for an older spec",
        ),
        pytest.param(app("n", "a", None), "Progressing", id="not looked at yet"),
        pytest.param(
            app("n", "a", "Degraded", cond("Ready", "False", "ReleaseNotReady")), "Degraded", id="not ready"
        ),
        pytest.param(
            app("n", "a", "Failed", cond("Ready", "False", "X"), cond("Stalled", "True", "RetriesExhausted")),
            "Stalled",
            id="stalled",
        ),
        pytest.param(app("n", "a", "Suspended", cond("Ready", "True")), "Suspended", id="suspended"),
        pytest.param(
            app("n", "a", "Upgrading", cond("Ready", "False", "UpgradeFailed"), cond("Reconciling", "True")),
            "Progressing",
            id="retrying",
        ),
    ],
)
def test_health(body: dict[str, Any], health: str) -> None:
    assert health_of(body) == health


def test_bodies_missing_everything_do_not_break_the_view() -> None:
    s = snapshot(
        sources=[{"metadata": {"name": "bare"}}],
        apps=[{"metadata": {"namespace": "n", "name": "bare"}}],
        payments=[{"metadata": {"namespace": "n", "name": "bare"}}],
        components=COMPONENTS,
        filters=Filters(),
        now=NOW,
    )
    assert s["apps"][0]["phase"] == "Pending"
    assert s["payments"][0]["phase"] == "Pending"
    assert s["sources"][0]["ready"] is False
    json.dumps(s)
