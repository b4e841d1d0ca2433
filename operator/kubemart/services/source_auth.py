"""Moved: a source's credentials are read in `kubemart.sources.credentials`.

Kept only until services/appinstall.py fetches charts through `kubemart.sources.Charts`; then delete it.
"""

from __future__ import annotations

from kubemart.adapters.kube import Kube
from kubemart.models.marketsource import MarketSource
from kubemart.services.problems import Problem
from kubemart.sources.base import SourceError
from kubemart.sources.credentials import RepoAuth, read_credentials


async def source_auth(kube: Kube, source: MarketSource) -> RepoAuth | None:
    try:
        return await read_credentials(kube, source)
    except SourceError as err:
        raise Problem(err.reason, err.message) from err
