"""The runtime view on the metrics port: /runtime/state and /runtime/dashboard, with the real operator.

The dashboard is loaded in headless Chromium (Debian's `chromium`, installed by `make setup`), driven by
its command line: the page reads its filters from the URL, so `--dump-dom` after the page's script ran
shows everything a person would see, and no browser automation library (nor a browser download) is needed.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from support.apps import install, running
from support.cluster import ROOT
from support.gateway import Gateway
from support.kube import Objects, condition
from support.operator_process import OperatorProcess
from support.wait import wait_for
from test_payments import buy, phase_is

# Markup in a user's spec must come out as text, never as an element or a script.
XSS = "<img src=x onerror=\"document.title='pwned'\">ghost"
SCREENSHOT = ROOT / "docs" / "runtime-dashboard.png"


def chromium() -> str:
    found = (
        os.environ.get("KUBEMART_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        pytest.fail("headless Chromium is missing: run `make setup` (installs Debian's chromium)")
    return found


def browse(url: str, tmp: Path, *extra: str) -> str:
    """The page as Chromium rendered it, after its script fetched the state and drew it."""
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # we run as root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            # Lets the page's fetch finish before the DOM is taken (the budget pauses while it is pending).
            "--virtual-time-budget=8000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


class Rows(HTMLParser):
    """Table rows by their data-* key (data-app, data-payment, data-source), with their cells' text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}
        self.title = ""
        self.tags: list[str] = []
        self._row: dict[str, Any] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "title":
            self._in_title = True
        if tag == "tr":
            key = next(
                (f"{k[5:]}:{v}" for k, v in a.items() if k in ("data-app", "data-payment", "data-source")),
                None,
            )
            self._row = {"attrs": a, "text": ""} if key else None
            if key:
                self.rows[key] = self._row  # type: ignore[assignment]

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row["text"] += data + " "
        if self._in_title:
            self.title += data


def state(operator: OperatorProcess, **query: str) -> dict[str, Any]:
    r = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/runtime/state", params=query, timeout=10)
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def test_runtime_state_and_dashboard_show_sources_apps_payments_and_the_operator(
    k8s: client.ApiClient,
    objects: Objects,
    operator: OperatorProcess,
    shop: str,
    gateway: Gateway,
    namespace: str,
    tmp_path: Path,
) -> None:
    install(objects, namespace, "blog", source=shop, app="blog")
    install(objects, namespace, "ghost", source=shop, app=XSS)
    buy(objects, namespace, shop)
    wait_for(lambda: running(objects, namespace, "blog"), timeout=120, what="blog Running")
    wait_for(
        lambda: condition(objects.get("appinstalls", "ghost", namespace), "Stalled"),
        timeout=60,
        what="ghost Stalled",
    )
    wait_for(
        lambda: phase_is(objects, namespace, "AwaitingPayment"), timeout=30, what="payment AwaitingPayment"
    )
    # Drift: the app's ConfigMap deleted by hand is put back, and the correction is counted.
    client.CoreV1Api(k8s).delete_namespaced_config_map("blog-config", namespace)
    wait_for(
        lambda: state(operator, namespace=namespace)["corrections"], timeout=60, what="the correction shown"
    )
    # The view reads the bodies the operator holds; its own status writes reach it through the watch.
    wait_for(
        lambda: (
            [a["phase"] for a in state(operator, namespace=namespace)["apps"]] == ["Running", "Pending"]
            and state(operator, namespace=namespace)["payments"][0]["phase"] == "AwaitingPayment"
        ),
        timeout=30,
        what="the view caught up",
    )

    s = state(operator, namespace=namespace)
    (src,) = [x for x in s["sources"] if x["name"] == shop]
    assert src["ready"] is True
    assert src["appCount"] == 2
    assert src["revision"]
    assert src["lastSyncTime"]
    blog, ghost = s["apps"]
    assert (blog["name"], blog["phase"], blog["health"], blog["installedVersion"]) == (
        "blog",
        "Running",
        "Healthy",
        "1.0.0",
    )
    assert blog["ready"]["status"] == "True"
    assert (ghost["name"], ghost["health"], ghost["stalled"]["reason"]) == ("ghost", "Stalled", "AppNotFound")
    assert ghost["app"] == XSS
    (pay,) = s["payments"]
    assert (pay["name"], pay["app"], pay["phase"], pay["amount"], pay["currency"]) == (
        "buy",
        "notes",
        "AwaitingPayment",
        "4.99",
        "USD",
    )
    assert s["summary"]["apps"] == {
        "total": 2,
        "byPhase": {"Pending": 1, "Running": 1},
        "byHealth": {"Healthy": 1, "Stalled": 1},
    }
    assert s["summary"]["payments"] == {"total": 1, "byPhase": {"AwaitingPayment": 1}}
    (fixed,) = s["corrections"]
    assert (fixed["name"], fixed["app"]) == ("blog", "blog")
    assert fixed["count"] >= 1
    assert "blog-config" in fixed["lastSummary"]
    assert fixed["lastTime"]
    assert blog["corrections"]["count"] == fixed["count"]
    assert s["namespaces"] == {namespace: {"apps": 2, "byPhase": {"Pending": 1, "Running": 1}}}
    op = s["operator"]
    assert op["version"]
    assert op["uptimeSeconds"] >= 0
    assert op["controllers"]["appinstall"]["objects"] >= 2
    assert set(op["controllers"]) == {"appinstall", "marketsource", "payment"}
    assert op["helm"]["slotsMax"] == 16
    assert 0 <= op["helm"]["slotsInUse"] <= 16
    assert op["driftWatches"]["alive"] == op["driftWatches"]["total"] > 0
    assert op["webhookServer"] == {"running": True}
    assert op["catalogSync"]["ready"] >= 1

    # Filters.
    assert [a["name"] for a in state(operator, namespace=namespace, app="blog")["apps"]] == ["blog"]
    assert [a["name"] for a in state(operator, namespace=namespace, phase="running")["apps"]] == ["blog"]
    filtered = state(operator, namespace=namespace, phase="AwaitingPayment")
    assert (filtered["apps"], [p["name"] for p in filtered["payments"]]) == ([], ["buy"])
    assert state(operator, namespace=f"{namespace}-none")["apps"] == []
    everyone = state(operator)
    assert {f"{namespace}/blog", f"{namespace}/ghost"} <= {
        f"{a['namespace']}/{a['name']}" for a in everyone["apps"]
    }

    # Nothing secret: not the gateway's token or webhook secret, not the checkout session.
    payment = objects.get("payments", "buy", namespace)
    text = httpx.get(f"http://127.0.0.1:{operator.metrics_port}/runtime/state", timeout=10).text
    for secret in (gateway.token, "whsec", payment["status"]["sessionID"], payment["status"]["checkoutURL"]):  # type: ignore[index]
        assert secret not in text

    # The page, after its script ran: the same apps, phases and payment, and the markup shown as text.
    url = f"http://127.0.0.1:{operator.metrics_port}/runtime/dashboard?namespace={namespace}"
    dom = browse(url, tmp_path, "--dump-dom")
    page = Rows()
    page.feed(dom)
    assert page.title == "Kubemart runtime", "no script from the data ran"
    assert page.rows[f"app:{namespace}/blog"]["attrs"]["data-phase"] == "Running"
    assert "Healthy" in page.rows[f"app:{namespace}/blog"]["text"]
    assert "1.0.0" in page.rows[f"app:{namespace}/blog"]["text"]
    ghost_row = page.rows[f"app:{namespace}/ghost"]
    assert "Stalled" in ghost_row["text"]
    assert "AppNotFound" in ghost_row["text"]
    assert XSS in ghost_row["text"], "markup comes out as text"
    assert "img" not in page.tags, "and never as an element"
    assert html.escape(XSS, quote=False) in dom
    assert page.rows[f"payment:{namespace}/buy"]["attrs"]["data-phase"] == "AwaitingPayment"
    assert "4.99 USD" in page.rows[f"payment:{namespace}/buy"]["text"]
    assert f"source:{shop}" in page.rows
    assert "Drift watches" in dom
    assert "Helm slots" in dom
    assert "blog-config" in dom, "the recent correction is shown"

    # A filter in the URL is applied by the page.
    page = Rows()
    page.feed(browse(f"{url}&phase=Running", tmp_path, "--dump-dom"))
    assert [k for k in page.rows if k.startswith("app:")] == [f"app:{namespace}/blog"]

    shot = tmp_path / "dashboard.png"
    browse(url, tmp_path, f"--screenshot={shot}", "--window-size=1280,1200")
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG")
    assert 10_000 < len(png) < 600_000
    if os.environ.get("KUBEMART_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.write_bytes(png)
