"""An Olares app's OlaresManifest.yaml as MarketApp fields (pure).

An Olares Market app keeps its catalog metadata in OlaresManifest.yaml inside the chart, not in
Chart.yaml (beclab/apps, olaresManifest.version 0.10 to 0.12): `metadata` (title, icon,
description, categories), `spec` (developer, website, sourceCode, doc, license, required and limited
cpu, memory, disk and GPU, supportArch), `entrances` and `options.dependencies`. The manifest came
from a catalog server: each field is checked and cut to the MarketApp's bounds, or left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubemart.catalog.metadata import exact, text, url
from kubemart.models import marketapp as bounds
from kubemart.models.marketapp import (
    CatalogEntrance,
    Dependency,
    Developer,
    Link,
    Requirements,
    ResourceLimits,
)

MANIFEST_KEY = "olaresManifest"
"""The key of a chart version's entry (a dict of Chart.yaml fields) that holds its parsed manifest."""
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([eE][0-9]+|m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
# Olares versions its category names ("Productivity_v112"); the person-facing name is before the suffix.
_CATEGORY_VERSION = re.compile(r"_v[0-9]+$")


@dataclass
class OlaresFields:
    title: str | None = None
    description: str | None = None
    icon: str | None = None
    home: str | None = None
    categories: list[str] = field(default_factory=list)
    developer: Developer | None = None
    license: str | None = None
    links: list[Link] = field(default_factory=list)
    requirements: Requirements | None = None
    entrances: list[CatalogEntrance] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def quantity(value: Any) -> str | None:
    """A Kubernetes quantity (0.5, 500m, 2Gi), or None for anything else."""
    found = exact(value, bounds.MAX_WORD)
    return found if found is not None and _QUANTITY.match(found.strip()) else None


def categories(value: Any) -> list[str]:
    out: list[str] = []
    for item in _list(value):
        name = exact(item, bounds.MAX_WORD)
        if name is None:
            continue
        name = _CATEGORY_VERSION.sub("", name.strip())
        if name and name not in out:
            out.append(name)
        if len(out) == bounds.MAX_CATEGORIES:
            break
    return out


def requirements(spec: Mapping[str, Any]) -> Requirements | None:
    limits = ResourceLimits(
        cpu=quantity(spec.get("limitedCpu")),
        memory=quantity(spec.get("limitedMemory")),
        disk=quantity(spec.get("limitedDisk")),
        gpu=quantity(spec.get("limitedGpu")),
    )
    arches = [a for a in (exact(x, bounds.MAX_WORD) for x in _list(spec.get("supportArch"))) if a]
    found = Requirements(
        cpu=quantity(spec.get("requiredCpu")),
        memory=quantity(spec.get("requiredMemory")),
        disk=quantity(spec.get("requiredDisk")),
        gpu=quantity(spec.get("requiredGpu")),
        architectures=arches[: bounds.MAX_ARCHITECTURES],
        limits=limits if limits.wire() else None,
    )
    return found if found.wire() != {"architectures": []} else None


def entrances(value: Any) -> list[CatalogEntrance]:
    out: list[CatalogEntrance] = []
    for item in _list(value):
        item = _map(item)
        name = exact(item.get("name"), bounds.MAX_WORD)
        if not name:
            continue
        port = item.get("port")
        out.append(
            CatalogEntrance(
                name=name,
                title=text(item.get("title"), bounds.MAX_SHORT),
                host=exact(item.get("host"), bounds.MAX_NAME),
                port=port
                if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536
                else None,
                icon=url(item.get("icon")),
                auth_level=exact(item.get("authLevel"), bounds.MAX_WORD),
                invisible=True if item.get("invisible") is True else None,
            )
        )
        if len(out) == bounds.MAX_ENTRANCES:
            break
    return out


def dependencies(options: Mapping[str, Any]) -> list[Dependency]:
    out: list[Dependency] = []
    for item in _list(options.get("dependencies")):
        item = _map(item)
        name = exact(item.get("name"), bounds.MAX_NAME)
        if not name:
            continue
        out.append(
            Dependency(
                app=name,
                version=exact(item.get("version"), bounds.MAX_SHORT),
                type=exact(item.get("type"), bounds.MAX_WORD),
                mandatory=True if item.get("mandatory") is True else None,
            )
        )
        if len(out) == bounds.MAX_DEPENDENCIES:
            break
    return out


def _license(spec: Mapping[str, Any]) -> str | None:
    # `license: [{text: MIT, url: ...}]`; several licences read as one SPDX-like "A OR B".
    names = [text(_map(item).get("text"), bounds.MAX_SHORT) for item in _list(spec.get("license"))]
    joined = " OR ".join(n.strip() for n in names if n and n.strip())
    return exact(joined, bounds.MAX_SHORT) if joined else None


def _links(spec: Mapping[str, Any]) -> list[Link]:
    out: list[Link] = []
    for name, key in (("source", "sourceCode"), ("documentation", "doc")):
        found = url(spec.get(key))
        if found:
            out.append(Link(name=name, url=found))
    for item in _list(spec.get("license")):
        found = url(_map(item).get("url"))
        if found and len(out) < bounds.MAX_LINKS:
            out.append(Link(name="license", url=found))
    return out


def olares_fields(manifest: Mapping[str, Any]) -> OlaresFields:
    """What the manifest says about the app, within the MarketApp's bounds."""
    meta, spec = _map(manifest.get("metadata")), _map(manifest.get("spec"))
    developer = text(spec.get("developer"), bounds.MAX_SHORT)
    return OlaresFields(
        title=text(meta.get("title"), bounds.MAX_SHORT),
        description=text(meta.get("description"), bounds.MAX_DESCRIPTION),
        icon=url(meta.get("icon")),
        home=url(spec.get("website")),
        categories=categories(meta.get("categories")),
        developer=Developer(name=developer) if developer and developer.strip() else None,
        license=_license(spec),
        links=_links(spec),
        requirements=requirements(spec),
        entrances=entrances(manifest.get("entrances")),
        dependencies=dependencies(_map(manifest.get("options"))),
    )
