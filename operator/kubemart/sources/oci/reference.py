"""What an OCI registry's answers and our oci:// URLs mean (pure: no I/O).

`oci://host[:port]/path` names a registry (always spoken to over HTTPS) and a path under which each
repository is one chart, as `helm push <chart> oci://host/path` lays them out: `path/<chart>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from kubemart.domain.versions import sort_versions_desc

# The distribution spec's repository name grammar, one path component.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SIGNATURE_TAG = re.compile(r"sha256-[0-9a-f]{64}\.(sig|att|sbom)")
# One auth-param of a challenge (RFC 9110 11.2): name=token or name="quoted string".
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*,?')
_LINK = re.compile(r"<([^>]*)>\s*;([^,]*)")

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",)
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_CHART_LEGACY = "application/tar+gzip"
"""The chart layer's media type in charts pushed by helm before 3.7 (still read by helm)."""


class InvalidReference(ValueError):
    """An oci:// URL, a name or a digest that cannot be used; the message says why."""


@dataclass(frozen=True)
class Registry:
    """A parsed `oci://host[:port]/path`."""

    host: str
    """host[:port], as in the URL."""
    prefix: str
    """The path, without slashes at either end; "" for the whole registry."""

    @property
    def base(self) -> str:
        return f"https://{self.host}"

    def repository(self, chart: str) -> str:
        return f"{self.prefix}/{chart}" if self.prefix else chart

    def chart_of(self, repository: str) -> str | None:
        """The chart a repository of the registry's catalog is, or None when it is not right under the path."""
        rest = repository.removeprefix(self.prefix + "/") if self.prefix else repository
        if rest == repository and self.prefix:
            return None
        return rest if _COMPONENT.fullmatch(rest) else None

    def chart_url(self, repository: str, digest: str) -> str:
        return f"oci://{self.host}/{repository}@{digest}"


def parse_registry(url: str) -> Registry:
    """`oci://host[:port]/path` -> Registry. Raises InvalidReference."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidReference(f"it cannot be parsed ({exc})") from None
    if parts.scheme.lower() != "oci":
        raise InvalidReference("it does not start with oci://")
    if parts.username is not None or parts.password is not None:
        raise InvalidReference("it holds credentials; put them in the Secret spec.secretRef names")
    if parts.query or parts.fragment or not parts.hostname:
        raise InvalidReference("it must be oci://host[:port]/path, with no query or fragment")
    host = parts.hostname if port is None else f"{parts.hostname}:{port}"
    if ":" in parts.hostname:  # IPv6
        host = f"[{parts.hostname}]" + ("" if port is None else f":{port}")
    prefix = parts.path.strip("/")
    if prefix and not all(_COMPONENT.fullmatch(c) for c in prefix.split("/")):
        raise InvalidReference(
            "its path is not a valid repository path (lowercase letters, digits and . _ - between them)"
        )
    return Registry(host=host, prefix=prefix)


def parse_chart_url(url: str) -> tuple[str, str, str]:
    """`oci://host/repository@sha256:...` (an AppVersion's url) -> (host, repository, digest)."""
    rest = url.removeprefix("oci://")
    if rest == url or "@" not in rest or "/" not in rest:
        raise InvalidReference("it is not oci://host/repository@sha256:<digest>")
    name, _, digest = rest.rpartition("@")
    host, _, repository = name.partition("/")
    if not _DIGEST.fullmatch(digest) or not all(_COMPONENT.fullmatch(c) for c in repository.split("/")):
        raise InvalidReference("it is not oci://host/repository@sha256:<digest>")
    return host, repository, digest


def valid_digest(digest: object) -> bool:
    return isinstance(digest, str) and _DIGEST.fullmatch(digest) is not None


def tag_version(tag: str) -> str | None:
    """The chart version a tag stands for, or None when the tag is not semver.

    `helm push` writes the `+` of build metadata as `_` (a tag cannot hold `+`); helm reads it back.
    """
    if not _TAG.fullmatch(tag):
        return None
    version = tag.replace("_", "+")
    return version if sort_versions_desc([version]) == [version] else None


def signature_tag(tag: str) -> bool:
    """A tag cosign writes next to a chart (its signature, attestation or SBOM): not a version."""
    return _SIGNATURE_TAG.fullmatch(tag) is not None


def next_link(header: str | None, current: str) -> str | None:
    """The `rel="next"` target of a Link header, absolute; None without one.

    Raises InvalidReference when it leads to another origin: pagination stays on the registry.
    """
    if not header:
        return None
    for target, params in _LINK.findall(header):
        rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
        if any("next" in r.split() for r in rels):
            resolved = urljoin(current, target.strip())
            here, there = urlsplit(current), urlsplit(resolved)
            if (here.scheme, here.netloc) != (there.scheme, there.netloc):
                raise InvalidReference("its Link header points to another host")
            return str(resolved)
    return None


@dataclass(frozen=True)
class Challenge:
    scheme: str
    """lowercase: "basic" or "bearer" (or what else the registry asks for)."""
    params: dict[str, str]


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header; None when there is none."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            break  # a second challenge, or junk: the first one's params are what we use
        value = match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[match.group(1).lower()] = value
        pos = match.end()
    return Challenge(scheme=scheme.lower(), params=params)
