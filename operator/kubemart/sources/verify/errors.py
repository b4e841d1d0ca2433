"""How a verification failure is reported: a ChartFetchError whose reason the release engine keeps."""

from __future__ import annotations

from kubemart.sources.base import ChartFetchError


class VerificationError(ChartFetchError):
    """A chart could not be verified, or failed verification.

    Unlike a download failure, its reason is shown as is even when retryable (a missing Secret:
    `VerificationSecretNotFound`), so a person sees that verification, not the network, is in the way.
    Not retryable (`VerificationFailed`): the chart is refused until its digest, its provenance or the
    keyring changes.
    """
