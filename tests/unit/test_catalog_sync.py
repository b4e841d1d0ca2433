"""The catalog sync's memory of its own work: which MarketApp deletions are echoes, which must be restored."""

from __future__ import annotations

from pathlib import Path

from kubemart.catalog.sync import CatalogSync
from kubemart.runtime.settings import Settings


def sync(tmp_path: Path) -> CatalogSync:
    return CatalogSync(kube=None, settings=Settings(chart_cache_dir=tmp_path), events=None)  # type: ignore[arg-type]


def deleted(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"source": "whatever-the-object-said"}}


def test_a_deletion_by_someone_else_wakes_the_source_the_name_belongs_to(tmp_path: Path) -> None:
    catalog = sync(tmp_path)
    catalog._verified["acme"] = ("uid", 1)
    # The source is the name's first label, whatever the deleted object's spec claimed.
    assert catalog.app_deleted(deleted("acme.pro.vaultlite")) == "acme"
    assert "acme" not in catalog._verified, "the next sync lists and restores instead of trusting a 304"


def test_the_syncs_own_deletions_are_echoes(tmp_path: Path) -> None:
    catalog = sync(tmp_path)
    catalog._verified["acme"] = ("uid", 1)
    catalog._deleting("acme.gone")
    assert catalog.app_deleted(deleted("acme.gone")) is None
    assert catalog._verified == {"acme": ("uid", 1)}
    assert catalog.app_deleted(deleted("acme.gone")) == "acme", "only the one echo is expected"


def test_names_that_no_source_can_have_wake_nothing(tmp_path: Path) -> None:
    catalog = sync(tmp_path)
    assert catalog.app_deleted(deleted("Not_A_Label.app")) is None
    assert catalog.app_deleted({"metadata": {}}) is None


def test_forget_drops_what_was_kept_about_a_source(tmp_path: Path) -> None:
    catalog = sync(tmp_path)
    catalog._verified["acme"] = ("uid", 1)
    catalog.failures[("", "acme")] = 3
    catalog.forget(("", "acme"))
    assert catalog._verified == {}
    assert catalog.failures == {}
