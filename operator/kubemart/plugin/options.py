"""The plugin's shared options, connection and output helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import click

from kubemart.domain.durations import parse_duration
from kubemart.plugin.api import Market, load_config
from kubemart.plugin.table import as_document

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


def duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def connection_options(func: Callable[P, R]) -> Callable[P, R]:
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


def output_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "-o", "--output", type=click.Choice(["yaml", "json"]), help="Print the objects as YAML or JSON."
    )(func)


def wait_options(func: Callable[P, R]) -> Callable[P, R]:
    func = click.option(
        "--timeout",
        default="5m",
        show_default=True,
        callback=duration,
        help="How long --wait waits (30s, 5m, 1h).",
    )(func)
    return click.option("--wait", is_flag=True, help="Wait until it is done, and fail if it fails.")(func)


def open_market(
    ctx: click.Context, kubeconfig: str | None, context: str | None, namespace: str | None
) -> Market:
    base: Connection = ctx.find_object(Connection) or Connection()
    return Connection(
        kubeconfig=kubeconfig or base.kubeconfig,
        context=context or base.context,
        namespace=namespace or base.namespace,
    ).market()


def print_object(obj: dict[str, Any] | list[dict[str, Any]], output: str) -> None:
    click.echo(as_document(obj, output))


def note(text: str) -> None:
    click.echo(text, err=True)
