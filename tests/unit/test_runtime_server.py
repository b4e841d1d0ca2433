"""The metrics port's server, on 127.0.0.1: /metrics, /runtime/state with filters, the dashboard page."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import socket
from typing import Any

import httpx

from kubemart.runtime.http_server import RuntimeServer, content_security_policy, dashboard_page
from kubemart.runtime.runtime_state import Filters


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_and_get(paths: list[str]) -> tuple[list[httpx.Response], list[Filters]]:
    seen: list[Filters] = []

    def state(filters: Filters) -> dict[str, Any]:
        seen.append(filters)
        return {"filters": filters.as_dict(), "apps": []}

    async def main() -> list[httpx.Response]:
        server, port = RuntimeServer(state), _port()
        await server.start(port, host="127.0.0.1")
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                return [await client.get(p) for p in paths]
        finally:
            await server.close()

    return asyncio.run(main()), seen


def test_metrics_state_and_dashboard_are_served() -> None:
    (metrics, state, page, missing), seen = serve_and_get(
        ["/metrics", "/runtime/state?namespace=team-a&phase=Running&ignored=1", "/runtime/dashboard", "/nope"]
    )
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    assert "kubemart_reconciles" in metrics.text
    assert state.status_code == 200
    assert state.json() == {"filters": {"namespace": "team-a", "phase": "Running"}, "apps": []}
    assert seen == [Filters(namespace="team-a", phase="Running")]
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert missing.status_code == 404


def test_the_dashboard_runs_only_its_own_script() -> None:
    (page,), _ = serve_and_get(["/runtime/dashboard"])
    policy = page.headers["content-security-policy"]
    (script,) = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "connect-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"


def test_the_page_is_self_contained_and_never_parses_data_as_html() -> None:
    page = dashboard_page()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "no external assets"
    assert "@import" not in page
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in page
    assert content_security_policy(page).startswith("default-src 'none'")
