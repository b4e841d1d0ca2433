"""`kubectl market search`: the apps on offer, by name or by how many install them.

The install counts are what the operator keeps in each MarketApp's `status.installs` (written at
most once per app per interval, so a few seconds behind); an app nobody installed shows none
(0), and counts that make no sense show `-` and sort as none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from kubemart.plugin.options import connection_options, note, open_market, output_option, print_object
from kubemart.plugin.table import NONE, render_table
from kubemart.plugin.views import matches, price_text

SORTS = ("name", "installs", "running")
_DESCRIPTION_WIDTH = 60
Obj = Mapping[str, Any]


def _spec(app: Obj) -> Mapping[str, Any]:
    return app.get("spec") or {}


def installs(app: Obj) -> tuple[int, int] | None:
    """(total, running) from the MarketApp's status (none shown: nobody installed it); None when malformed."""
    shown = (app.get("status") or {}).get("installs")
    if shown is None:
        return 0, 0
    if not isinstance(shown, Mapping):
        return None
    total, running = shown.get("total"), shown.get("running")
    if not isinstance(total, int) or not isinstance(running, int):
        return None
    return total, running


def sort_apps(apps: Sequence[Obj], by: str = "name") -> list[Obj]:
    """Pure: by name (then source); by `installs` or `running`, the most first, then by name."""
    by_name = sorted(apps, key=lambda a: (str(_spec(a).get("app", "")), str(_spec(a).get("source", ""))))
    if by == "name":
        return by_name
    pick = 0 if by == "installs" else 1
    return sorted(by_name, key=lambda a: -((installs(a) or (0, 0))[pick]))  # stable: ties stay by name


def _installs_cell(app: Obj) -> str:
    counted = installs(app)
    return "-" if counted is None else str(counted[0])


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def search_table(apps: Sequence[Obj], *, sort: str = "name") -> str:
    rows = [
        [
            spec.get("app", ""),
            spec.get("source", ""),
            spec.get("latestVersion") or NONE,
            ",".join(spec.get("categories") or []) or NONE,
            price_text(app),
            _installs_cell(app),
            _shorten(spec.get("description") or "", _DESCRIPTION_WIDTH),
        ]
        for app in sort_apps(apps, sort)
        for spec in [_spec(app)]
    ]
    return render_table(["name", "source", "latest", "category", "price", "installs", "description"], rows)


@click.command()
@click.argument("text", required=False)
@click.option("--category", help="Only apps in this category.")
@click.option("--source", help="Only apps of this MarketSource.")
@click.option(
    "--sort",
    type=click.Choice(SORTS),
    default="name",
    show_default=True,
    help="Order: by name, or the most installed (installs) or most running first.",
)
@output_option
@connection_options
@click.pass_context
def search(
    ctx: click.Context,
    text: str | None,
    category: str | None,
    source: str | None,
    sort: str,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """List the apps on offer.

    TEXT matches name, title, description and keywords, ignoring case. INSTALLS counts the
    AppInstalls of each app in the cluster.
    """
    market = open_market(ctx, kubeconfig, context, namespace)
    found = [a for a in market.apps(source=source) if matches(a, text=text, category=category)]
    if output:
        print_object([dict(a) for a in sort_apps(found, sort)], output)
    elif not found:
        note("No apps found." + ("" if text or category or source else " Is a MarketSource registered?"))
    else:
        click.echo(search_table(found, sort=sort))
