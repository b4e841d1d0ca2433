"""The `kubectl-market` console script: kubectl runs it for `kubectl market ...`.

Commands gather their inputs, call `api.Market` and print what `views` make of the answers.
Every expected failure is a `PluginError` (or a bad value or values file), printed as one line
``error: ...`` with exit code 1; usage mistakes exit 2, as click (and kubectl) do.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from kubemart import __version__
from kubemart.domain.triggers import RECONCILE_ANNOTATION
from kubemart.domain.values import InvalidValues
from kubemart.plugin.api import AlreadyExists, Market, PluginError
from kubemart.plugin.dependencies import chosen_options, dependency_options, with_dependencies
from kubemart.plugin.notifications import notifications
from kubemart.plugin.options import (
    Connection,
    connection_options,
    note,
    open_market,
    output_option,
    print_object,
    wait_options,
)
from kubemart.plugin.search import search
from kubemart.plugin.setvalues import InvalidSet, values_from_flags
from kubemart.plugin.upload import upload
from kubemart.plugin.views import (
    SEARCH_HINT,
    app_info,
    appinstall_body,
    choose_app,
    history_table,
    installs_table,
)
from kubemart.plugin.waiting import wait_for_phase, wait_gone, wait_handled

P = ParamSpec("P")
R = TypeVar("R")
KIND = "appinstall.kubemart.io"
_POLL_SECONDS = 1.0


# --- the group ---------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubectl-market")
@connection_options
@click.pass_context
def main(ctx: click.Context, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Browse the Kubemart catalog and install, stop, resume and uninstall apps.

    \b
    kubectl market search wiki
    kubectl market info wiki
    kubectl market install wiki --set replicaCount=2 -n team-a --wait
    kubectl market status -A
    """
    ctx.obj = Connection(kubeconfig=kubeconfig, context=context, namespace=namespace)


# --- the catalog ---------------------------------------------------------------------------------------


def _choose(market: Market, app: str, source: str | None) -> dict[str, Any]:
    apps = market.apps(app=app)
    several = source is None and len({(a.get("spec") or {}).get("source") for a in apps}) > 1
    choice = choose_app(app, apps, source=source, priorities=market.source_priorities() if several else None)
    if choice.app is None:
        raise PluginError(choice.error or f"app {app!r} not found; {SEARCH_HINT}")
    return choice.app


@main.command()
@click.argument("app")
@click.option("--source", help="The MarketSource, when several offer the app.")
@output_option
@connection_options
@click.pass_context
def info(
    ctx: click.Context,
    app: str,
    source: str | None,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Describe one app of the catalog.

    Versions, developer, price, requirements, and where it is installed in the namespace.
    """
    market = open_market(ctx, kubeconfig, context, namespace)
    found = _choose(market, app, source)
    if output:
        print_object(found, output)
        return
    spec = found["spec"]
    try:
        installs = [
            i
            for i in market.installs()
            if (i.get("spec") or {}).get("app") == spec["app"]
            and (i.get("spec") or {}).get("source") == spec["source"]
        ]
    except PluginError:  # may not read installs here; the catalog entry is what was asked for
        installs = []
    click.echo(app_info(found, installs=installs))


# --- installs ------------------------------------------------------------------------------------------


def _read_values_files(names: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for name in names:
        try:
            if name == "-":
                out.append(("(stdin)", sys.stdin.read()))
            else:
                out.append((name, Path(name).read_text()))
        except OSError as exc:
            raise PluginError(f"the values file {name} cannot be read: {exc.strerror or exc}") from None
    return out


@main.command()
@click.argument("app")
@click.option("--version", "version", help="An exact version or a range (^1.2, ~1.2.0); default: latest.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Set a value, as helm --set does.")
@click.option(
    "--set-string", "set_strings", multiple=True, metavar="KEY=VALUE", help="Set a value, always a string."
)
@click.option(
    "-f", "--values", "files", multiple=True, metavar="FILE", help="A YAML values file ('-' for stdin)."
)
@click.option("--name", help="Name of the AppInstall (and of the helm release); default: the app's name.")
@click.option("--source", help="The MarketSource, when several offer the app.")
@click.option("--dry-run", is_flag=True, help="Print the AppInstall instead of creating it.")
@dependency_options
@wait_options
@output_option
@connection_options
@click.pass_context
def install(
    ctx: click.Context,
    app: str,
    version: str | None,
    sets: tuple[str, ...],
    set_strings: tuple[str, ...],
    files: tuple[str, ...],
    name: str | None,
    source: str | None,
    dry_run: bool,
    wait: bool,
    timeout: float,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Install an app from the catalog.

    Creates an AppInstall; the operator installs it. Values are built as helm builds them:
    -f files merged in order (maps deeply, lists replaced), then --set, then --set-string.
    """
    values = values_from_flags(_read_values_files(files), sets, set_strings)
    market = open_market(ctx, kubeconfig, context, namespace)
    chosen = _choose(market, app, source)
    name = name or chosen["spec"]["app"]
    body = appinstall_body(name=name, namespace=market.namespace, app=chosen, version=version, values=values)
    body = with_dependencies(market, chosen, body, dry_run=dry_run, **chosen_options())
    if dry_run:
        print_object(body, output or "yaml")
        return
    try:
        created = market.create_install(body)
    except AlreadyExists:
        raise PluginError(
            f"app install {name!r} already exists in namespace {market.namespace}; "
            "choose another --name, or change it with 'kubectl edit appinstall'"
        ) from None
    if not output:
        click.echo(f"{KIND}/{name} created in namespace {market.namespace}")
    if wait:
        created = wait_for_phase(market, name, want_phase="Running", timeout=timeout, quiet=bool(output))
    if output:
        print_object(created, output)


@main.command()
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="AppInstalls of every namespace.")
@output_option
@connection_options
@click.pass_context
def status(
    ctx: click.Context,
    name: str | None,
    all_namespaces: bool,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Show installed apps: phase, readiness, message.

    Without NAME, every AppInstall of the namespace (or of all, with -A).
    """
    market = open_market(ctx, kubeconfig, context, namespace)
    found = [market.install(name)] if name else market.installs(all_namespaces=all_namespaces)
    if output:
        print_object(found[0] if name else found, output)
    elif not found:
        where = "" if all_namespaces else f" in namespace {market.namespace}"
        note(f"No apps installed{where}.")
    else:
        click.echo(installs_table(found, now=datetime.now(UTC), with_namespace=all_namespaces))


@main.command()
@click.argument("name")
@output_option
@connection_options
@click.pass_context
def history(
    ctx: click.Context,
    name: str,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Show an app's past operations, newest first."""
    market = open_market(ctx, kubeconfig, context, namespace)
    obj = market.install(name)
    entries = (obj.get("status") or {}).get("history") or []
    if output:
        print_object(entries, output)
    elif not entries:
        note(f"No history yet for {name}.")
    else:
        click.echo(history_table(obj, now=datetime.now(UTC)))


@main.command()
@click.argument("name")
@wait_options
@output_option
@connection_options
@click.pass_context
def retry(
    ctx: click.Context,
    name: str,
    wait: bool,
    timeout: float,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Ask the operator to reconcile an app now.

    Sets the annotation kubemart.io/reconcile-requested-at to a new value; use it after fixing
    what the operator complained about.
    """
    market = open_market(ctx, kubeconfig, context, namespace)
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    obj = market.patch_install(name, {"metadata": {"annotations": {RECONCILE_ANNOTATION: stamp}}})
    if not output:
        click.echo(f"{KIND}/{name} retry requested ({RECONCILE_ANNOTATION}={stamp})")
    if wait:
        obj = wait_handled(market, name, stamp, timeout=timeout, quiet=bool(output))
    if output:
        print_object(obj, output)


def _set_stopped(
    ctx: click.Context,
    name: str,
    *,
    stopped: bool,
    wait: bool,
    timeout: float,
    output: str | None,
    connection: tuple[str | None, str | None, str | None],
) -> None:
    market = open_market(ctx, *connection)
    obj = market.patch_install(name, {"spec": {"stopped": stopped}})
    if not output:
        click.echo(f"{KIND}/{name} {'stopping' if stopped else 'resuming'}")
    if wait:
        want = "Stopped" if stopped else "Running"
        obj = wait_for_phase(market, name, want_phase=want, timeout=timeout, quiet=bool(output))
    if output:
        print_object(obj, output)


@main.command()
@click.argument("name")
@wait_options
@output_option
@connection_options
@click.pass_context
def stop(
    ctx: click.Context,
    name: str,
    wait: bool,
    timeout: float,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Stop an app, keeping its data.

    Sets spec.stopped=true: the operator scales the app's workloads to zero.
    """
    _set_stopped(
        ctx,
        name,
        stopped=True,
        wait=wait,
        timeout=timeout,
        output=output,
        connection=(kubeconfig, context, namespace),
    )


@main.command()
@click.argument("name")
@wait_options
@output_option
@connection_options
@click.pass_context
def resume(
    ctx: click.Context,
    name: str,
    wait: bool,
    timeout: float,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Start a stopped app again.

    Sets spec.stopped=false: the operator restores the app's workloads.
    """
    _set_stopped(
        ctx,
        name,
        stopped=False,
        wait=wait,
        timeout=timeout,
        output=output,
        connection=(kubeconfig, context, namespace),
    )


@main.command()
@click.argument("name")
@wait_options
@connection_options
@click.pass_context
def uninstall(
    ctx: click.Context,
    name: str,
    wait: bool,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Uninstall an app.

    Deletes the AppInstall; the operator uninstalls the helm release.
    """
    market = open_market(ctx, kubeconfig, context, namespace)
    market.delete_install(name)
    click.echo(f"{KIND}/{name} deleted")
    if wait:
        wait_gone(market, name, timeout=timeout)
        click.echo(f"{name} is uninstalled")


main.add_command(notifications)
main.add_command(search)
main.add_command(upload)


# --- entry point -----------------------------------------------------------------------------------------


def run() -> None:
    """The console script: one-line errors, exit 1; usage errors exit 2 (click)."""
    try:
        # Without standalone mode click returns --help's and --version's exit code instead of exiting.
        code = main.main(prog_name="kubectl market", standalone_mode=False)
    except click.Abort:
        note("Aborted.")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (PluginError, InvalidSet, InvalidValues) as exc:
        note(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
