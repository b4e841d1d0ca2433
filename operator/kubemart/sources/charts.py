"""Charts for the release engine: a chart version of a MarketSource, as a local archive.

`cached`/`ready` are for the reconcile's observe step; `fetch` downloads when needed and says,
through `ChartFetchError.retryable`, whether an AppInstall should retry or is Stalled until the
catalog or the source changes. For a source with `spec.verify`, an archive counts as there only once
it passed verification against the Secret's current keys: `fetch` verifies it (or finds the mark of
an earlier check), and `cached`/`ready` look for that mark.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kubemart.adapters.kube import Kube
from kubemart.models.marketapp import AppVersion
from kubemart.models.marketsource import MarketSource, Verify, VerifyProvider
from kubemart.runtime.settings import Settings
from kubemart.sources.base import ChartFetchError, Source, SourceError
from kubemart.sources.cache import ChartCache
from kubemart.sources.credentials import RepoAuth, read_credentials
from kubemart.sources.helm_http import HelmHttpSource
from kubemart.sources.registry import source_for
from kubemart.sources.verify.cosign import CosignChecked, refusal
from kubemart.sources.verify.errors import VerificationError
from kubemart.sources.verify.keyring import Keyring, read_keyring
from kubemart.sources.verify.marks import Marks
from kubemart.sources.verify.provenance import ProvenanceVerifier


class Charts:
    def __init__(self, kube: Kube, cache_dir: Path, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._cache = ChartCache(cache_dir)
        self._marks = Marks(cache_dir)
        self._provenance = ProvenanceVerifier(self._marks, helm=settings.helm_binary)
        self._keyrings: dict[tuple[str, str], str] = {}
        """verify Secret (namespace, name) -> fingerprint of its keys when last read."""

    def cached(self, source: MarketSource, version: AppVersion) -> Path | None:
        """The archive of `version` when the cache holds it (and, with spec.verify, it passed); else None."""
        try:
            found = self._source(source, auth=None)  # credentials do not change what a digest names
        except SourceError:
            return None
        path = found.cached(version)
        verify = source.spec.verify
        if path is None or verify is None:
            return path
        keyring = self._keyrings.get((verify.secret_ref.namespace, verify.secret_ref.name))
        if keyring is None or not self._marks.verified(_hex(path), verify.provider, keyring):
            return None
        return path

    async def ready(self, source: MarketSource, version: AppVersion) -> Path | None:
        """`cached`, with the verify Secret read first: a changed keyring is never trusted from memory."""
        if source.spec.verify is not None:
            try:
                await self._keyring(source.spec.verify)
            except VerificationError:
                return None  # `fetch` reports it
        return self.cached(source, version)

    async def fetch(self, source: MarketSource, version: AppVersion, *, app: str = "") -> Path:
        """The archive of `version`, downloaded, checked and verified unless cached. Raises ChartFetchError."""
        verify = source.spec.verify
        keyring = await self._keyring(verify) if verify is not None else None
        try:
            auth = await read_credentials(self._kube, source)
            found = self._source(source, auth=auth)
        except SourceError as err:
            raise ChartFetchError(err.reason, err.message, retryable=err.retryable) from err
        path = await found.fetch(version)
        if verify is not None and keyring is not None:
            await self._verify(found, verify, keyring, version, path, app)
        return path

    async def _verify(
        self, found: Source, verify: Verify, keyring: Keyring, version: AppVersion, path: Path, app: str
    ) -> None:
        label = f"{app} {version.version}".strip()
        if verify.provider is VerifyProvider.PGP and isinstance(found, HelmHttpSource):
            if self._provenance.verified(_hex(path), keyring):
                return  # no request at all: the mark is next to the archive
            provenance = await found.provenance(version, app=app)
            await self._provenance.verify(
                archive=path, hexdigest=_hex(path), label=label, provenance=provenance, keyring=keyring
            )
            return
        if verify.provider is VerifyProvider.COSIGN and isinstance(found, CosignChecked):
            hexdigest = _hex(path)
            if self._marks.verified(hexdigest, verify.provider, keyring.fingerprint):
                return
            result = await found.verify_cosign(version, public_key=keyring.data)
            error = refusal(label, result)
            if error is not None:
                raise error
            await asyncio.to_thread(
                self._marks.record, hexdigest, verify.provider, keyring.fingerprint, {"cosign": result.detail}
            )
            return
        raise VerificationError(
            "VerificationUnsupported",
            f"spec.verify.provider {verify.provider.value} cannot check charts of this source's type: use "
            "pgp for type helm (provenance files) and cosign for type oci. Chart "
            f"{label} is not installed.",
        )

    async def _keyring(self, verify: Verify) -> Keyring:
        keyring = await read_keyring(self._kube, verify)
        self._keyrings[(verify.secret_ref.namespace, verify.secret_ref.name)] = keyring.fingerprint
        return keyring

    def _source(self, source: MarketSource, *, auth: RepoAuth | None) -> Source:
        return source_for(source, auth=auth, settings=self._settings, cache=self._cache, kube=self._kube)


def _hex(path: Path) -> str:
    return path.name.removesuffix(".tgz")
