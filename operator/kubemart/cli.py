"""The `kubemart` console script: `kubemart run` starts the operator; `kubemart gateway-check` checks a gateway."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import click
from pydantic import ValidationError

from kubemart import __version__
from kubemart.runtime.settings import Settings

# kopf (and the Kubernetes client under it) takes seconds to import: it is imported only once the
# settings and ports checked out, so that a bad setting or a busy port is reported at once.

STACK_BYTES = 64 * 1024 * 1024
"""C stack for the main thread (raised to at start-up) and for every thread started after."""
RECURSION_LIMIT = 15_000
"""Enough to decode the deepest JSON the API server stores (10,000 levels) under kopf's own frames."""
_BYTES_PER_LEVEL = 4096
"""The most C stack one level of recursion was measured to take (through C calls, e.g. sorted(key=))."""


def harden_process() -> int:
    """Let the operator decode every object the API server can hold, without crashing; returns the limit set.

    The API server keeps objects nested up to 10,000 levels deep. kopf decodes watch events and LISTs
    with `json.loads`, which recurses once per level, so with Python's default limit of 1,000 one such
    AppInstall made the watcher die, and at every restart again (the initial LIST holds it). The
    limit is raised to RECURSION_LIMIT, and the C stack made big enough for that to be safe, never a
    segfault: the main thread's stack may grow up to the soft RLIMIT_STACK, which is raised (within
    the hard limit); other threads get STACK_BYTES each. Values are then bounded before anything else
    recursive touches them (domain.bounds).
    """
    threading.stack_size(STACK_BYTES)
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft != resource.RLIM_INFINITY and soft < STACK_BYTES:
        wanted = STACK_BYTES if hard == resource.RLIM_INFINITY else min(STACK_BYTES, hard)
        try:
            resource.setrlimit(resource.RLIMIT_STACK, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    stack = STACK_BYTES if soft == resource.RLIM_INFINITY else min(soft, STACK_BYTES)
    limit = max(sys.getrecursionlimit(), min(RECURSION_LIMIT, stack // _BYTES_PER_LEVEL))
    sys.setrecursionlimit(limit)
    return limit


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
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    show_default=True,
    help="Work only while holding a coordination.k8s.io Lease (for more than one replica).",
)
@click.option("--leader-election-name", default="kubemart", show_default=True, help="The Lease's name.")
@click.option(
    "--leader-election-namespace",
    default=None,
    help="The Lease's namespace. Default: the pod's own namespace, or `default` outside a cluster.",
)
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def run(
    namespaces: tuple[str, ...],
    liveness_endpoint: str,
    leader_elect: bool,
    leader_election_name: str,
    leader_election_namespace: str | None,
    verbose: bool,
) -> None:
    """Run the operator against $KUBECONFIG's cluster, or in-cluster config inside a pod."""
    try:
        settings = Settings()
    except ValidationError as err:
        raise click.ClickException(f"bad KUBEMART_* setting: {err}") from None
    # Every port is bound (or refused) before kopf starts: a busy port is one clear line and exit 1,
    # never a startup handler that kopf retries every minute.
    webhook_socket = _listen(
        settings.webhook_bind_address, settings.webhook_port, "payment webhooks", "KUBEMART_WEBHOOK_PORT"
    )
    metrics_socket = _listen(
        settings.metrics_bind_address,
        settings.metrics_port,
        "metrics and the runtime view",
        "KUBEMART_METRICS_PORT",
    )
    _check_free(liveness_endpoint)

    import kopf

    from kubemart.runtime import logs

    # Text for people, or JSON lines (KUBEMART_LOG_FORMAT=json); both name the object a line is about.
    logs.configure(settings.log_format, verbose=verbose)
    limit = harden_process()
    if limit < RECURSION_LIMIT:
        logging.getLogger("kubemart").warning(
            "the stack limit (ulimit -s) allows objects nested %d levels deep, not the API server's 10,000",
            limit,
        )
    # Health probes, every API request and every watch event handled are not news.
    for noisy in ("aiohttp.access", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").addFilter(_QuietEventHandlers())
    # Importing the handlers registers them with kopf's default registry.
    from kubemart import handlers  # noqa: F401

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_shutdown)

    def operate(
        stop_flag: asyncio.Event | None = None, step_down: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        kopf.run(
            loop=loop,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            liveness_endpoint=liveness_endpoint or None,
            stop_flag=stop_flag,
            # The drift watches follow the same namespaces as kopf (runs with namespaced RBAC).
            # With leader election, kopf waits on `stop_flag`; `shutdown` sets it when a signal stopped
            # kopf instead, or kopf would wait 5 s for that waiter before returning (and the Lease with it).
            memo=kopf.Memo(
                namespaces=list(namespaces),
                stop_flag=stop_flag,
                step_down=step_down,
                settings=settings,
                webhook_socket=webhook_socket,
                metrics_socket=metrics_socket,
            ),
        )

    if not leader_elect:
        try:
            operate()
        except Exception as exc:  # kopf raises ActivityError when the startup handler failed for good
            raise click.ClickException(str(exc.__cause__ or exc)) from None
        return
    from kubemart.runtime.leader import run_elected

    # A standby must not hold the ports (the Service would send it requests it never answers): the
    # leader binds them once elected; they were checked free above.
    for sock in (webhook_socket, metrics_socket):
        if sock is not None:
            sock.close()
    webhook_socket = metrics_socket = None

    code = run_elected(
        loop,
        operate,
        name=leader_election_name,
        namespace=leader_election_namespace,
        liveness_endpoint=liveness_endpoint,
    )
    raise SystemExit(code)


def _listen(host: str, port: int, what: str, setting: str) -> socket.socket | None:
    """A listening socket on `port` (0: the feature is off), or a one-line exit saying which setting to change."""
    if not port:
        return None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"cannot listen on {host} port {port} for {what}: {exc.strerror or exc}; "
            f"set {setting} to a free port, or 0 to turn it off"
        ) from None
    sock.setblocking(False)
    return sock


def _check_free(endpoint: str) -> None:
    """kopf binds its health endpoint itself: fail here, clearly, if it cannot."""
    if not endpoint:
        return
    parts = urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:
        raise click.ClickException(f"--liveness {endpoint!r} is not a valid URL") from None
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((parts.hostname or "0.0.0.0", port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on port {port} for the health endpoint: {exc.strerror or exc}; "
                "set --liveness to a free address, or to an empty value to turn it off"
            ) from None


@main.command("gateway-check")
@click.option("--url", required=True, help="The gateway's base URL, as a MarketSource's spec.payment.url.")
@click.option(
    "--token",
    envvar="KUBEMART_GATEWAY_TOKEN",
    required=True,
    help="Its API token (or $KUBEMART_GATEWAY_TOKEN).",
)
@click.option(
    "--public-key",
    required=True,
    help="The key receipts must verify against, as spec.payment.publicKey takes it; @FILE reads a file (PEM).",
)
@click.option("--key-id", default="", help="The kid receipts signed with that key carry.")
@click.option("--pay-url", help="A sandbox hook that pays a session when POSTed to; {session} is replaced.")
@click.option(
    "--refund-url", help="A sandbox hook that refunds a session when POSTed to; {session} is replaced."
)
@click.option(
    "--wait-for-payment", type=float, default=0.0, help="Without --pay-url: seconds to pay by hand."
)
@click.option("--amount", default="1.00", show_default=True, help="The price asked for.")
@click.option("--currency", default="USD", show_default=True)
def gateway_check(
    url: str,
    token: str,
    public_key: str,
    key_id: str,
    pay_url: str | None,
    refund_url: str | None,
    wait_for_payment: float,
    amount: str,
    currency: str,
) -> None:
    """Check a payment gateway against docs/payment-gateway.md; exits 1 when anything fails."""
    from pathlib import Path

    from kubemart import gateway_check as check

    if public_key.startswith("@"):
        public_key = Path(public_key[1:]).read_text()
    options = check.Options(
        url=url,
        token=token,
        public_key=public_key,
        key_id=key_id,
        pay_url=pay_url,
        refund_url=refund_url,
        wait_for_payment=wait_for_payment,
        amount=amount,
        currency=currency,
    )
    findings = asyncio.run(check.run(options))
    for finding in findings:
        click.echo(finding.line())
    failed = sum(f.outcome == "FAIL" for f in findings)
    passed = sum(f.outcome == "PASS" for f in findings)
    click.echo(f"{passed} checks passed, {failed} failed")
    raise SystemExit(1 if failed else 0)
