"""A source's credentials: read in this one place from the Secret its `spec.secretRef` names.

The Secret holds `username` and `password`, or `token`, and optionally `ca.crt` (API.md); a git source
over ssh reads `identity` (a private key) and `known_hosts`. Values
never appear in a message, a repr or a log line: messages name the Secret, not what it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubemart.adapters.kube import Kube, KubeError
from kubemart.models.marketsource import MarketSource
from kubemart.sources.base import SourceError

# RFC 6750 tokens are visible ASCII; anything else would be rejected (and echoed) by the HTTP layer.
_TOKEN = re.compile(r"[\x21-\x7e]+")
MAX_SECRET_VALUE = 64 * 1024
"""Longest credential or CA bundle read; a Secret holds at most 1 MiB in all."""


@dataclass(frozen=True)
class RepoAuth:
    """How to authenticate to one repository: basic (username/password) or bearer (token), plus a CA.

    `ca_pem` is trusted in addition to the default CAs (certifi, or SSL_CERT_FILE/SSL_CERT_DIR).
    """

    username: str | None = None
    password: str | None = None
    token: str | None = None
    ca_pem: str | None = None
    identity: str | None = None
    """git over ssh: the private key (the Secret's `identity`)."""
    known_hosts: str | None = None
    """git over ssh: the server's host keys (the Secret's `known_hosts`); without them ssh is refused."""

    def __post_init__(self) -> None:
        # The messages never include the values: they end up in logs and status conditions.
        if self.token is not None and (self.username is not None or self.password is not None):
            raise ValueError("RepoAuth takes either a username/password or a token, not both")
        if self.password is not None and self.username is None:
            raise ValueError("RepoAuth has a password but no username")
        if self.token is not None and not _TOKEN.fullmatch(self.token):
            raise ValueError(
                "RepoAuth token is empty or contains whitespace, control or non-ASCII characters"
            )

    @property
    def has_credentials(self) -> bool:
        return self.username is not None or self.token is not None or self.identity is not None

    def __repr__(self) -> str:
        def hidden(value: str | None) -> str:
            return "None" if value is None else "'***'"

        ca = "None" if self.ca_pem is None else f"<{len(self.ca_pem)} chars of PEM>"
        return (
            f"RepoAuth(username={self.username!r}, password={hidden(self.password)}, "
            f"token={hidden(self.token)}, ca_pem={ca}, identity={hidden(self.identity)}, "
            f"known_hosts={'None' if self.known_hosts is None else '<set>'})"
        )


async def read_credentials(kube: Kube, source: MarketSource) -> RepoAuth | None:
    """The credentials `source.spec.secretRef` names; None without a secretRef. Raises SourceError."""
    ref = source.spec.secret_ref
    if ref is None:
        return None
    where = f"Secret {ref.namespace}/{ref.name}"
    try:
        data = await kube.read_secret_data(ref.name, ref.namespace)
    except KubeError as err:
        raise SourceError(
            "SecretUnreadable", f"{where} cannot be read: {err.message}", retryable=True
        ) from err
    if data is None:
        raise SourceError(
            "SecretNotFound",
            f"{where} named in the source's secretRef does not exist; create it or fix secretRef.",
            retryable=True,
        )
    if any(len(v) > MAX_SECRET_VALUE for v in data.values()):
        raise SourceError(
            "InvalidSecret",
            f"{where} holds a value longer than {MAX_SECRET_VALUE // 1024} KiB; it should hold username and "
            "password, or token, and optionally ca.crt.",
        )
    try:
        return RepoAuth(
            username=data.get("username"),
            password=data.get("password"),
            token=data.get("token"),
            ca_pem=data.get("ca.crt"),
            identity=data.get("identity"),
            known_hosts=data.get("known_hosts"),
        )
    except ValueError as exc:
        raise SourceError("InvalidSecret", f"{where} cannot be used: {exc}; fix the Secret.") from exc
