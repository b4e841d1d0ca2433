"""`kubectl market notifications`: the sinks table (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from kubemart.plugin.notifications import sinks_table

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def sink(name: str, namespace: str = "team-a", **status: object) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": "https://hooks.example.com:8443/in/s3cr3t-token?sig=abc"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
            **status,
        },
    }


def test_a_delivering_sink_shows_counts_and_its_last_delivery_but_never_the_url_path() -> None:
    table = sinks_table(
        [
            sink(
                "ops",
                delivered=7,
                queued=1,
                dropped=0,
                failures=0,
                lastDelivery={"time": "2026-11-29T11:59:30Z", "reason": "Installed", "httpStatus": 204},
            )
        ],
        now=NOW,
        with_namespace=False,
    )
    header, row = table.splitlines()
    assert header.split() == [
        "NAME",
        "RECEIVER",
        "READY",
        "DELIVERED",
        "QUEUED",
        "DROPPED",
        "FAILURES",
        "LAST",
    ]
    assert row.split()[:7] == ["ops", "https://hooks.example.com:8443", "Ready", "7", "1", "0", "0"]
    assert "Installed 30s ago (204)" in row
    assert "s3cr3t" not in table, "the URL's path and query may carry a token"
    assert "sig=" not in table


def test_a_failing_sink_shows_the_newer_failure_and_namespaces_with_all() -> None:
    failing = sink(
        "pager",
        namespace="team-b",
        failures=3,
        lastDelivery={"time": "2026-11-29T11:00:00Z", "reason": "Installed", "httpStatus": 200},
        lastFailure={"time": "2026-11-29T11:58:00Z", "message": "connection refused by hooks.example.com"},
    )
    table = sinks_table([failing, sink("ops")], now=NOW, with_namespace=True)
    lines = table.splitlines()
    assert lines[0].split()[0] == "NAMESPACE"
    assert [line.split()[:2] for line in lines[1:]] == [["team-a", "ops"], ["team-b", "pager"]]
    assert "failed 2m ago: connection refused by hooks.example.com" in lines[2]
    assert lines[1].split()[-1] == "<none>", "nothing delivered nor failed yet"


def test_odd_status_values_do_not_break_the_table() -> None:
    odd = {
        "metadata": {"name": "x", "namespace": "n"},
        "spec": {"url": "http://[::1"},
        "status": {"delivered": "many"},
    }
    row = sinks_table([odd], now=NOW, with_namespace=False).splitlines()[1].split()
    assert row[:4] == ["x", "-", "<none>", "0"]
