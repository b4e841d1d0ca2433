"""What a catalog sync must do, decided from what the source lists and what exists (pure).

A sync writes only what differs: a MarketApp whose live spec already hashes to the wanted one costs
nothing. It never takes over an object it does not control: a name held by another MarketSource's
object (an older incarnation waiting for the garbage collector) or by a person's is left alone and
reported, never force-applied over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubemart.catalog.entries import Catalog, CatalogEntry, content_hash
from kubemart.domain.catalog import controlled_by
from kubemart.domain.durations import parse_duration


@dataclass(frozen=True)
class Existing:
    """A MarketApp found under a catalog name."""

    owned: bool
    """Controlled by this very MarketSource (its uid)."""
    content_hash: str | None
    """The hash of its live spec, so that an edited or stale object is rewritten."""


@dataclass(frozen=True)
class SyncPlan:
    create: list[CatalogEntry]
    update: list[CatalogEntry]
    delete: list[str]
    taken: list[str]
    """Names the catalog wants that objects this source does not control hold."""
    unchanged: int

    @property
    def writes(self) -> int:
        return len(self.create) + len(self.update) + len(self.delete)


def existing_of(bodies: Iterable[Mapping[str, Any]], source_uid: str) -> dict[str, Existing]:
    """What each listed MarketApp is to the source with uid `source_uid`."""
    out: dict[str, Existing] = {}
    for body in bodies:
        owned = controlled_by(body, source_uid)
        spec = body.get("spec")
        live = content_hash(spec) if owned and isinstance(spec, dict) else None
        out[body["metadata"]["name"]] = Existing(owned=owned, content_hash=live)
    return out


def plan_sync(catalog: Catalog, existing: Mapping[str, Existing]) -> SyncPlan:
    """Which MarketApps to create, update and delete, and which names are taken by others."""
    create: list[CatalogEntry] = []
    update: list[CatalogEntry] = []
    taken: list[str] = []
    for name, entry in catalog.entries.items():
        found = existing.get(name)
        if found is None:
            create.append(entry)
        elif not found.owned:
            taken.append(name)
        elif found.content_hash != entry.content_hash:
            update.append(entry)
    delete = sorted(n for n, found in existing.items() if found.owned and n not in catalog.entries)
    unchanged = len(catalog.entries) - len(create) - len(update) - len(taken)
    return SyncPlan(create=create, update=update, delete=delete, taken=sorted(taken), unchanged=unchanged)


def effective_interval(text: str, minimum: float) -> tuple[float, str | None]:
    """Seconds between syncs, never under `minimum`, and a note when the spec's was raised to it.

    Admission refuses intervals under the CRD's minimum; objects written before that rule existed
    (an `interval: 0s` polled about 25 times a second) are held to the operator's minimum here.
    Raises ValueError for text that is not a duration.
    """
    seconds = parse_duration(text)
    if seconds >= minimum:
        return seconds, None
    return (
        minimum,
        f"spec.interval {text} is under the minimum of {minimum:g}s, so the catalog syncs every {minimum:g}s",
    )
