"""`kubectl market notifications`: where the namespace's Events go (NotificationSinks) and how that goes.

One row per sink: the receiver's host (never the path or query, which may carry a token), whether
the operator accepts the sink (its Ready reason), what it delivered, what waits, what was dropped,
the consecutive failures and the last delivery or failure. docs/notifications.md says what each means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import click

from kubemart.plugin.options import connection_options, note, open_market, output_option, print_object
from kubemart.plugin.table import NONE, human_age, parse_time, render_table
from kubemart.plugin.views import condition

Obj = Mapping[str, Any]


def _host(url: object) -> str:
    try:
        parts = urlsplit(str(url or ""))
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}" if host else NONE
    except ValueError:
        return "-"


def _count(status: Obj, field: str) -> str:
    value = status.get(field)
    return str(value) if isinstance(value, int) else "0"


def _last(status: Obj, now: datetime) -> str:
    """The newer of the last delivery and the last failure, as `<reason> <age> ago` or `failed <age> ago: <why>`."""
    delivered, failed = status.get("lastDelivery") or {}, status.get("lastFailure") or {}
    when_ok, when_bad = parse_time(delivered.get("time")), parse_time(failed.get("time"))
    if when_bad and (when_ok is None or when_bad > when_ok):
        return f"failed {human_age(when_bad, now)} ago: {failed.get('message') or ''}"
    if when_ok:
        return (
            f"{delivered.get('reason') or ''} {human_age(when_ok, now)} ago ({delivered.get('httpStatus')})"
        )
    return NONE


def sinks_table(sinks: Sequence[Obj], *, now: datetime, with_namespace: bool) -> str:
    """Pure: NotificationSinks as a table, sorted by namespace and name."""
    headers = ["name", "receiver", "ready", "delivered", "queued", "dropped", "failures", "last"]
    if with_namespace:
        headers.insert(0, "namespace")
    rows = []
    ordered = sorted(
        sinks, key=lambda s: ((s.get("metadata") or {}).get("namespace", ""), s["metadata"]["name"])
    )
    for sink in ordered:
        meta, spec, status = sink.get("metadata") or {}, sink.get("spec") or {}, sink.get("status") or {}
        ready = condition(sink, "Ready") or {}
        row = [
            meta.get("name", ""),
            _host(spec.get("url")),
            ready.get("reason") or NONE,
            _count(status, "delivered"),
            _count(status, "queued"),
            _count(status, "dropped"),
            _count(status, "failures"),
            _last(status, now),
        ]
        if with_namespace:
            row.insert(0, meta.get("namespace", ""))
        rows.append(row)
    return render_table(headers, rows)


@click.command()
@click.option("-A", "--all-namespaces", is_flag=True, help="Sinks of every namespace.")
@output_option
@connection_options
@click.pass_context
def notifications(
    ctx: click.Context,
    all_namespaces: bool,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Where this namespace's Events are posted (NotificationSinks) and how delivery goes.

    \b
    kubectl market notifications
    kubectl market notifications -A
    """
    market = open_market(ctx, kubeconfig, context, namespace)
    sinks = market.sinks(all_namespaces=all_namespaces)
    if output:
        print_object({"apiVersion": "v1", "kind": "List", "items": sinks}, output)
        return
    if not sinks:
        where = "any namespace" if all_namespaces else f"namespace {market.namespace}"
        note(f"no NotificationSink in {where}; docs/notifications.md shows how to add one")
        return
    click.echo(sinks_table(sinks, now=datetime.now(UTC), with_namespace=all_namespaces))
