"""The `kubemart` console script: `kubemart run` starts the operator."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import click
import kopf

from kubemart import __version__


class _QuietEventHandlers(logging.Filter):
    """Drops kopf's line for each watch event handled: they only feed the reconcile loops."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("Handler '") and "_event' succeeded" in msg)


def _quiet_shutdown(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """kopf's watch generators are closed mid-stream when the operator stops; that is expected, not news."""
    if "closing of asynchronous generator" in str(context.get("message", "")):
        logging.getLogger("kubemart").debug("at shutdown: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


@click.group()
@click.version_option(__version__, prog_name="kubemart")
def main() -> None:
    """Kubemart: a Kubernetes-native app store."""


@main.command()
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only this namespace (repeatable). Default: the whole cluster.",
)
@click.option(
    "--liveness",
    "liveness_endpoint",
    default="http://0.0.0.0:8080/healthz",
    show_default=True,
    help="Where kopf serves its health endpoint; empty to disable.",
)
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def run(namespaces: tuple[str, ...], liveness_endpoint: str, verbose: bool) -> None:
    """Run the operator against $KUBECONFIG's cluster, or in-cluster config inside a pod."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s %(message)s",
    )
    # Health probes, every API request and every watch event handled are not news.
    for noisy in ("aiohttp.access", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").addFilter(_QuietEventHandlers())
    # Importing the handlers registers them with kopf's default registry.
    from kubemart import handlers  # noqa: F401

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_shutdown)
    kopf.run(
        loop=loop,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=liveness_endpoint or None,
    )
