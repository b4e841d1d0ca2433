"""The `kubectl-market` console script: kubectl runs it for `kubectl market ...`.

Commands gather their inputs, call `api.Market` and print what `views` make of the answers.
Every expected failure is a `PluginError` (or a bad value or values file), printed as one line
``error: ...`` with exit code 1; usage mistakes exit 2, as click (and kubectl) do.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from kubemart import __version__
from kubemart.domain.durations import parse_duration
from kubemart.domain.triggers import RECONCILE_ANNOTATION
from kubemart.domain.values import InvalidValues
from kubemart.plugin.api import AlreadyExists, Market, PluginError, load_config
from kubemart.plugin.setvalues import InvalidSet, values_from_flags
from kubemart.plugin.table import as_document
from kubemart.plugin.views import (
    SEARCH_HINT,
    WaitState,
    app_info,
    appinstall_body,
    choose_app,
    condition,
    history_table,
    install_state,
    installs_table,
    matches,
    search_table,
)

P = ParamSpec("P")
R = TypeVar("R")
KIND = "appinstall.kubemart.io"
_POLL_SECONDS = 1.0


@dataclass
class Connection:
    """Where to connect: the group's flags, overridden by the same flags given after the command."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None

    def market(self) -> Market:
        return Market(load_config(self.kubeconfig, self.context), namespace=self.namespace)


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _connection_options(func: Callable[P, R]) -> Callable[P, R]:
    """--kubeconfig, --context and -n on a command; given there, they win over the group's."""
    for option in reversed(
        [
            click.option("--kubeconfig", help="Path to the kubeconfig file (default: $KUBECONFIG)."),
            click.option("--context", help="The kubeconfig context to use."),
            click.option(
                "-n", "--namespace", help="The namespace (default: the context's namespace, else default)."
            ),
        ]
    ):
        func = option(func)
    return func


def _output_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "-o", "--output", type=click.Choice(["yaml", "json"]), help="Print the objects as YAML or JSON."
    )(func)


def _wait_options(func: Callable[P, R]) -> Callable[P, R]:
    func = click.option(
        "--timeout",
        default="5m",
        show_default=True,
        callback=_duration,
        help="How long --wait waits (30s, 5m, 1h).",
    )(func)
    return click.option("--wait", is_flag=True, help="Wait until it is done, and fail if it fails.")(func)


def _market(ctx: click.Context, kubeconfig: str | None, context: str | None, namespace: str | None) -> Market:
    base: Connection = ctx.find_object(Connection) or Connection()
    return Connection(
        kubeconfig=kubeconfig or base.kubeconfig,
        context=context or base.context,
        namespace=namespace or base.namespace,
    ).market()


def _print_object(obj: dict[str, Any] | list[dict[str, Any]], output: str) -> None:
    click.echo(as_document(obj, output))


def _note(text: str) -> None:
    click.echo(text, err=True)


# --- the group ---------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubectl-market")
@_connection_options
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


@main.command()
@click.argument("text", required=False)
@click.option("--category", help="Only apps in this category.")
@click.option("--source", help="Only apps of this MarketSource.")
@_output_option
@_connection_options
@click.pass_context
def search(
    ctx: click.Context,
    text: str | None,
    category: str | None,
    source: str | None,
    output: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """List the apps on offer.

    TEXT matches name, title, description and keywords, ignoring case.
    """
    market = _market(ctx, kubeconfig, context, namespace)
    found = [a for a in market.apps(source=source) if matches(a, text=text, category=category)]
    if output:
        _print_object(found, output)
    elif not found:
        _note("No apps found." + ("" if text or category or source else " Is a MarketSource registered?"))
    else:
        click.echo(search_table(found))


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
@_output_option
@_connection_options
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
    market = _market(ctx, kubeconfig, context, namespace)
    found = _choose(market, app, source)
    if output:
        _print_object(found, output)
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
@_wait_options
@_output_option
@_connection_options
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
    market = _market(ctx, kubeconfig, context, namespace)
    chosen = _choose(market, app, source)
    name = name or chosen["spec"]["app"]
    body = appinstall_body(name=name, namespace=market.namespace, app=chosen, version=version, values=values)
    if dry_run:
        _print_object(body, output or "yaml")
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
        created = _wait(market, name, want_phase="Running", timeout=timeout, quiet=bool(output))
    if output:
        _print_object(created, output)


@main.command()
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="AppInstalls of every namespace.")
@_output_option
@_connection_options
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
    market = _market(ctx, kubeconfig, context, namespace)
    found = [market.install(name)] if name else market.installs(all_namespaces=all_namespaces)
    if output:
        _print_object(found[0] if name else found, output)
    elif not found:
        where = "" if all_namespaces else f" in namespace {market.namespace}"
        _note(f"No apps installed{where}.")
    else:
        click.echo(installs_table(found, now=datetime.now(UTC), with_namespace=all_namespaces))


@main.command()
@click.argument("name")
@_output_option
@_connection_options
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
    market = _market(ctx, kubeconfig, context, namespace)
    obj = market.install(name)
    entries = (obj.get("status") or {}).get("history") or []
    if output:
        _print_object(entries, output)
    elif not entries:
        _note(f"No history yet for {name}.")
    else:
        click.echo(history_table(obj, now=datetime.now(UTC)))


@main.command()
@click.argument("name")
@_wait_options
@_output_option
@_connection_options
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
    market = _market(ctx, kubeconfig, context, namespace)
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    obj = market.patch_install(name, {"metadata": {"annotations": {RECONCILE_ANNOTATION: stamp}}})
    if not output:
        click.echo(f"{KIND}/{name} retry requested ({RECONCILE_ANNOTATION}={stamp})")
    if wait:
        obj = _wait_handled(market, name, stamp, timeout=timeout, quiet=bool(output))
    if output:
        _print_object(obj, output)


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
    market = _market(ctx, *connection)
    obj = market.patch_install(name, {"spec": {"stopped": stopped}})
    if not output:
        click.echo(f"{KIND}/{name} {'stopping' if stopped else 'resuming'}")
    if wait:
        want = "Stopped" if stopped else "Running"
        obj = _wait(market, name, want_phase=want, timeout=timeout, quiet=bool(output))
    if output:
        _print_object(obj, output)


@main.command()
@click.argument("name")
@_wait_options
@_output_option
@_connection_options
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
@_wait_options
@_output_option
@_connection_options
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
@_wait_options
@_connection_options
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
    market = _market(ctx, kubeconfig, context, namespace)
    market.delete_install(name)
    click.echo(f"{KIND}/{name} deleted")
    if wait:
        _wait_gone(market, name, timeout=timeout)
        click.echo(f"{name} is uninstalled")


# --- waiting ---------------------------------------------------------------------------------------------


def _poll(
    what: str,
    probe: Callable[[], tuple[WaitState, dict[str, Any] | None]],
    *,
    goal: str,
    timeout: float,
    quiet: bool,
) -> dict[str, Any] | None:
    """Probe until done; progress lines go to stderr, so that -o output stays a clean document."""
    deadline = time.monotonic() + timeout
    said = ""
    while True:
        state, obj = probe()
        if state.failed:
            raise PluginError(f"{what} failed: {state.summary}")
        if state.summary != said and not quiet:
            _note(f"{what}: {state.summary}")
            said = state.summary
        if state.done:
            return obj
        if time.monotonic() >= deadline:
            raise PluginError(
                f"timed out after {timeout:g}s waiting for {what} {goal}; last: {state.summary}"
            )
        time.sleep(_POLL_SECONDS)


def _wait(market: Market, name: str, *, want_phase: str, timeout: float, quiet: bool) -> dict[str, Any]:
    def probe() -> tuple[WaitState, dict[str, Any] | None]:
        obj = market.find_install(name)
        return install_state(obj, want_phase=want_phase), obj

    obj = _poll(name, probe, goal=f"to be {want_phase}", timeout=timeout, quiet=quiet)
    assert obj is not None  # install_state is never done for a missing object
    return obj


def _wait_handled(market: Market, name: str, stamp: str, *, timeout: float, quiet: bool) -> dict[str, Any]:
    def probe() -> tuple[WaitState, dict[str, Any] | None]:
        obj = market.find_install(name)
        if obj is None:
            return WaitState(False, True, "it was deleted"), None
        status = obj.get("status") or {}
        if status.get("lastHandledReconcileAt") != stamp:
            return WaitState(False, False, "waiting for the operator to take the retry"), obj
        message = (condition(obj, "Ready") or {}).get("message")
        summary = f"retried; {status.get('phase') or 'Pending'}" + (f": {message}" if message else "")
        return WaitState(True, False, summary), obj

    obj = _poll(name, probe, goal="to be retried", timeout=timeout, quiet=quiet)
    assert obj is not None
    return obj


def _wait_gone(market: Market, name: str, *, timeout: float) -> None:
    def probe() -> tuple[WaitState, dict[str, Any] | None]:
        obj = market.find_install(name)
        if obj is None:
            return WaitState(True, False, "uninstalled"), None
        return WaitState(False, False, (obj.get("status") or {}).get("phase") or "Uninstalling"), obj

    _poll(name, probe, goal="to be uninstalled", timeout=timeout, quiet=False)


# --- entry point -----------------------------------------------------------------------------------------


def run() -> None:
    """The console script: one-line errors, exit 1; usage errors exit 2 (click)."""
    try:
        # Without standalone mode click returns --help's and --version's exit code instead of exiting.
        code = main.main(prog_name="kubectl market", standalone_mode=False)
    except click.Abort:
        _note("Aborted.")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (PluginError, InvalidSet, InvalidValues) as exc:
        _note(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
