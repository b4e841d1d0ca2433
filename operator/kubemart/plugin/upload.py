"""`kubectl market upload`: store a chart in the cluster, where upload sources offer it as an app.

The chart goes into one Secret per chart version in the namespace (domain.upload_storage), written
with the person's own credentials: whoever may create Secrets there may upload, nobody else, and the
operator is never asked to write for anyone. docs/sources/upload.md says why a Secret.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from kubemart.domain.upload_storage import secret_body, stored_digest
from kubemart.plugin.api import AlreadyExists, Forbidden, Market, PluginError
from kubemart.plugin.options import connection_options, note, open_market, wait_options
from kubemart.plugin.packaging import read_chart

_POLL_SECONDS = 1.0


@click.command()
@click.argument("chart", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace a stored version of the same number with other content.")
@wait_options
@connection_options
@click.pass_context
def upload(
    ctx: click.Context,
    chart: Path,
    force: bool,
    wait: bool,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Upload a chart (a directory or a .tgz) to the namespace, for its upload sources to offer.

    \b
    kubectl market upload ./mychart -n team-a --wait
    kubectl market install mychart -n team-a --source team-a-uploads
    """
    archive, data = read_chart(chart)
    market = open_market(ctx, kubeconfig, context, namespace)
    body = secret_body(archive, data, market.namespace)
    name = body["metadata"]["name"]
    where = f"namespace {market.namespace}"
    try:
        try:
            market.create_secret(body)
            done = "uploaded to"
        except AlreadyExists:
            done = _replace(market, body, force=force, what=f"{archive.name} {archive.version}")
    except Forbidden as exc:
        raise PluginError(_forbidden(where, exc)) from None
    click.echo(
        f"chart {archive.name} {archive.version} {done} {where} (secret/{name}, "
        f"{archive.size / 1024:.1f} KiB, sha256:{archive.digest[:12]})"
    )
    if wait:
        source = _wait_listed(market, archive.name, archive.version, archive.digest, timeout=timeout)
        click.echo(f"{archive.name} {archive.version} is in the catalog of source {source}")


def _replace(market: Market, body: dict[str, Any], *, force: bool, what: str) -> str:
    existing = market.secret(body["metadata"]["name"])
    if existing is None:  # deleted in between: create it after all
        market.create_secret(body)
        return "uploaded to"
    if stored_digest(existing) == stored_digest(body):
        return "already uploaded, unchanged, to"
    if not force:
        raise PluginError(
            f"{what} was uploaded before with other content; give the chart a new version (upgrades "
            "follow versions), or pass --force to replace it"
        )
    body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
    market.replace_secret(body)
    return "replaced in"


def _forbidden(where: str, exc: PluginError) -> str:
    return (
        f"you may not upload charts to {where}: uploading stores the chart in a Secret there, with your own "
        f"credentials, so it needs the right to create Secrets in it (the namespace's edit role); ask its "
        f"admin, or upload to a namespace of your own. The API server said: {exc}"
    )


def _wait_listed(market: Market, app: str, version: str, digest: str, *, timeout: float) -> str:
    """The source whose MarketApp lists that version with that digest, once one does."""
    deadline = time.monotonic() + timeout
    told = False
    while True:
        for item in market.apps(app=app):
            spec = item.get("spec") or {}
            for v in spec.get("versions") or []:
                if v.get("version") == version and str(v.get("digest") or "").endswith(digest):
                    return str(spec.get("source"))
        if time.monotonic() > deadline:
            raise PluginError(
                f"{app} {version} is stored, but no upload source listed it within the timeout: is there a "
                f"MarketSource of type upload with upload.namespace {market.namespace}? "
                "('kubectl get marketsources' shows them)"
            )
        if not told:
            note(f"{app}: waiting for an upload source to list version {version}")
            told = True
        time.sleep(_POLL_SECONDS)
