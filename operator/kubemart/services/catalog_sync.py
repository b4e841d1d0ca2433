"""Moved to `kubemart.catalog.sync`; this name stays until every import of it is gone."""

from kubemart.catalog.sync import CatalogSync

__all__ = ["CatalogSync"]
