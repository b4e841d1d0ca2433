"""`kubectl market install`'s dependencies: what the catalog says an app needs, offered to install first.

A MarketApp's `spec.dependencies` of type application that are mandatory (the chart annotation
`kubemart.io/dependencies`, an Olares manifest) name apps; those with no AppInstall of that app in
the namespace are missing. The install offers to install them (a prompt on a terminal, or
`--with-dependencies` / `--yes` for scripts), from the same source when it offers them, and names
them in the new AppInstall's spec.dependsOn. `--depends-on` adds AppInstalls of one's own choosing.
Without either, the AppInstall is created all the same and waits (DependencyMissing).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from kubemart.models.appinstall import DEPENDS_ON_MAX
from kubemart.plugin.api import AlreadyExists, Market, PluginError
from kubemart.plugin.options import note
from kubemart.plugin.views import appinstall_body, choose_app

R = TypeVar("R")
Obj = Mapping[str, Any]
MAX_DEPENDENCIES = 20
"""Apps one install may bring along (its dependencies' dependencies too)."""
_REF = re.compile(r"^(?:(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/)?(?P<name>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")


_META = "kubemart.dependencies"


def dependency_options(func: Callable[..., R]) -> Callable[..., R]:
    """--with-dependencies, -y/--yes and --depends-on; the command reads them with `chosen_options()`."""

    @functools.wraps(func)
    def keep(*args: Any, **kwargs: Any) -> R:
        names = ("with_dependencies", "yes", "depends_on")
        click.get_current_context().meta[_META] = {n: kwargs.pop(n) for n in names}
        return func(*args, **kwargs)

    wrapped: Callable[..., R] = click.option(
        "--depends-on",
        "depends_on",
        multiple=True,
        metavar="[NAMESPACE/]NAME",
        help="An AppInstall that must be Ready before this app installs or upgrades (spec.dependsOn).",
    )(keep)
    wrapped = click.option("-y", "--yes", is_flag=True, help="Answer yes: install missing dependencies.")(
        wrapped
    )
    return click.option(
        "--with-dependencies",
        is_flag=True,
        help="Install the apps the catalog says this one needs and the namespace lacks, first.",
    )(wrapped)


def chosen_options() -> dict[str, Any]:
    return dict(click.get_current_context().meta.get(_META) or {})


def depends_on_refs(values: Sequence[str]) -> list[dict[str, str]]:
    """Pure: `--depends-on` values as spec.dependsOn entries. Raises PluginError."""
    if len(values) > DEPENDS_ON_MAX:
        raise PluginError(f"at most {DEPENDS_ON_MAX} --depends-on are allowed")
    out = []
    for value in values:
        found = _REF.match(value)
        if found is None or len(found["name"]) > 253:
            raise PluginError(f"--depends-on {value!r} is not an AppInstall name or NAMESPACE/NAME")
        ref = {"name": found["name"]}
        if found["ns"]:
            ref["namespace"] = found["ns"]
        out.append(ref)
    return out


def needs(app: Obj) -> list[Obj]:
    """Pure: the catalog dependencies an install of `app` waits for (release/dependencies.py)."""
    deps = (app.get("spec") or {}).get("dependencies") or []
    return [
        d
        for d in deps
        if isinstance(d, Mapping) and (d.get("type") or "application") == "application" and d.get("mandatory")
    ]


def missing(app: Obj, installs: Sequence[Obj]) -> list[Obj]:
    """Pure: the dependencies of `app` that no AppInstall in `installs` (one namespace) provides."""
    present = {(i.get("spec") or {}).get("app") for i in installs} | {(app.get("spec") or {}).get("app")}
    return [d for d in needs(app) if d.get("app") not in present]


def _wanted(dep: Obj) -> str:
    return f"{dep['app']} {dep['version']}" if dep.get("version") else str(dep["app"])


def with_dependencies(
    market: Market,
    chosen: Obj,
    body: dict[str, Any],
    *,
    depends_on: Sequence[str] = (),
    with_dependencies: bool = False,
    yes: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """`body` with spec.dependsOn set; the missing catalog dependencies installed first when asked."""
    refs = depends_on_refs(depends_on)
    lacking = missing(chosen, market.installs())
    if lacking:
        app = chosen["spec"]["app"]
        what = ", ".join(_wanted(d) for d in lacking)
        asked = with_dependencies or yes
        if not asked and not dry_run and sys.stdin.isatty():
            asked = click.confirm(
                f"{app} needs {what}, not installed in namespace {market.namespace}. Install first?",
                default=True,
                err=True,
            )
        if asked and not dry_run:
            refs += [{"name": name} for name in _install_missing(market, chosen, lacking)]
        else:
            note(
                f"note: {app} needs {what}, not installed in namespace {market.namespace}; it waits "
                "(DependencyMissing) until they are. --with-dependencies installs them."
            )
    if refs:
        body["spec"]["dependsOn"] = refs[:DEPENDS_ON_MAX]
    return body


def _install_missing(market: Market, chosen: Obj, lacking: list[Obj]) -> list[str]:
    """Create an AppInstall for each missing app (and what those need), breadth first; their names."""
    source = chosen["spec"]["source"]
    queue, seen, created = list(lacking), {chosen["spec"]["app"]}, []
    while queue:
        dep = queue.pop(0)
        name = str(dep["app"])
        if name in seen:
            continue
        seen.add(name)
        if len(seen) > MAX_DEPENDENCIES + 1:
            raise PluginError(
                f"more than {MAX_DEPENDENCIES} dependencies to install; install them one by one"
            )
        offers = market.apps(app=name)
        same = [a for a in offers if (a.get("spec") or {}).get("source") == source]
        choice = choose_app(name, same or offers, source=source if same else None)
        if choice.app is None:
            raise PluginError(f"{chosen['spec']['app']} needs {_wanted(dep)}: {choice.error}")
        dep_body = appinstall_body(
            name=name, namespace=market.namespace, app=choice.app, version=dep.get("version"), values={}
        )
        try:
            market.create_install(dep_body)
        except AlreadyExists:
            raise PluginError(
                f"an AppInstall named {name!r} already exists in namespace {market.namespace} but is not of "
                f"app {name}; install {_wanted(dep)} under another name"
            ) from None
        note(f"appinstall.kubemart.io/{name} created in namespace {market.namespace} (a dependency)")
        created.append(name)
        queue += missing(choice.app, market.installs())
    return created
