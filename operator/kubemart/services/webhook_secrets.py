"""What the webhook endpoint needs, kept in memory: an unauthenticated request costs no API read.

The Payment reconcile reads its source's gateway Secret anyway; it leaves the webhook secret here,
with the session each Payment follows. The endpoint checks a webhook's signature against these
secrets before it parses anything, and wakes only the Payments of the sources whose secret
signed it. A rotated secret is picked up when the source's Payments next reconcile (a change of
the Secret or the source wakes them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubemart.domain import webhooks
from kubemart.runtime.controller import Key


@dataclass
class WebhookSecrets:
    _secrets: dict[str, bytes] = field(default_factory=dict)
    """Source name -> its webhook secret."""
    _following: dict[Key, tuple[str, str]] = field(default_factory=dict)
    """Payment -> (its source, the session it follows)."""

    def set_source(self, source: str, secret: bytes | None) -> None:
        if secret:
            self._secrets[source] = secret
        else:
            self._secrets.pop(source, None)

    def forget_source(self, source: str) -> None:
        self._secrets.pop(source, None)

    def follow(self, key: Key, source: str, session: str | None) -> None:
        if session:
            self._following[key] = (source, session)
        else:
            self._following.pop(key, None)

    def forget(self, key: Key) -> None:
        self._following.pop(key, None)

    def signers(self, header: str | None, body: bytes, *, now: float) -> list[str]:
        """The sources whose webhook secret signed `body`; webhooks.BadSignature when none did."""
        return webhooks.signers(header, body, self._secrets, now=now)

    def payments(self, session: str, sources: list[str]) -> list[Key]:
        """The Payments of `sources` that follow `session`."""
        return [key for key, (source, s) in self._following.items() if s == session and source in sources]

    def __len__(self) -> int:
        return len(self._secrets)
