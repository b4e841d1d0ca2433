"""A Helm repository's index.yaml read as chart versions, with bounds (pure: no I/O).

The index comes from a server we do not trust. It is read with `domain.safe_yaml`, which counts
aliases expanded, bounds nesting and nodes and stops at a deadline, so that neither a 559-byte alias
bomb nor a flat index of millions of tiny nodes can take the operator's memory or time. Call it in a
thread: even a well-formed index of thousands of charts takes seconds to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemart.domain import safe_yaml
from kubemart.domain.clip import one_line
from kubemart.sources.base import ChartVersions, SourceError


class InvalidIndex(SourceError):
    """The repository's index.yaml cannot be read as a Helm index (retrying an unchanged one will not help)."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidIndex", message)


@dataclass(frozen=True)
class IndexLimits:
    max_nodes: int = 2_000_000
    """Nodes, aliases expanded: a 5,000-chart index with 3 versions each has about 400,000."""
    seconds: float = 30.0
    max_depth: int = 32
    """An index entry nests a few levels (entries, chart, version, annotations, dependencies)."""


def parse_index(body: bytes, limits: IndexLimits | None = None) -> ChartVersions:
    """The `entries` of a Helm repository index: chart name -> its versions (mappings). Raises InvalidIndex."""
    limits = limits or IndexLimits()
    try:
        doc = safe_yaml.load(
            body,
            limits=safe_yaml.Limits(
                max_depth=limits.max_depth, max_nodes=limits.max_nodes, seconds=limits.seconds
            ),
            source="index.yaml",
        )
    except safe_yaml.UnsafeYAML as exc:
        raise InvalidIndex(f"The index cannot be read: {one_line(str(exc), 300)}.") from None
    if not isinstance(doc, dict):
        raise InvalidIndex("index.yaml is not a mapping; is the URL a Helm chart repository?")
    entries: Any = doc.get("entries")
    if entries is None:
        entries = {}
    if not isinstance(entries, dict):
        raise InvalidIndex("index.yaml has no `entries` mapping; is the URL a Helm chart repository?")
    return {k: [e for e in v if isinstance(e, dict)] for k, v in entries.items() if isinstance(v, list)}
