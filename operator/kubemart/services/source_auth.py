"""Credentials of a MarketSource, read from the Secret its secretRef names."""

from __future__ import annotations

from kubemart.adapters.chart_repo import RepoAuth
from kubemart.adapters.kube import Kube, KubeError
from kubemart.models.marketsource import MarketSource
from kubemart.services.problems import Problem


async def source_auth(kube: Kube, source: MarketSource) -> RepoAuth | None:
    ref = source.spec.secret_ref
    if ref is None:
        return None
    try:
        data = await kube.read_secret_data(ref.name, ref.namespace)
    except KubeError as err:
        raise Problem(
            "SecretUnreadable", f"Secret {ref.namespace}/{ref.name} cannot be read: {err.message}"
        ) from err
    if data is None:
        raise Problem(
            "SecretNotFound",
            f"Secret {ref.namespace}/{ref.name} named in the source's secretRef does not exist; create it or fix secretRef.",
        )
    return RepoAuth(
        username=data.get("username"),
        password=data.get("password"),
        token=data.get("token"),
        ca_pem=data.get("ca.crt"),
    )
