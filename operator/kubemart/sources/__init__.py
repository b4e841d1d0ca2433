"""Catalog sources: one Protocol (base.py), one package per kind of source (helm_http/; oci/, git/ and
upload/), the digest-addressed chart cache, and credentials read in one place."""

from kubemart.sources.base import ChartFetchError, Cursor, Snapshot, Source, SourceError, Unchanged
from kubemart.sources.charts import Charts
from kubemart.sources.registry import source_for

__all__ = [
    "ChartFetchError",
    "Charts",
    "Cursor",
    "Snapshot",
    "Source",
    "SourceError",
    "Unchanged",
    "source_for",
]
