"""Generated Helm repository indexes, for scale tests and benchmarks."""

from __future__ import annotations

from typing import Any

import yaml


def chart_entry(name: str, version: str, url: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v2",
        "name": name,
        "version": version,
        "appVersion": version,
        "description": f"Generated app number {i}",
        "keywords": ["generated", f"group-{i % 50}"],
        "annotations": {"kubemart.io/categories": f"category-{i % 20}", "kubemart.io/title": f"App {i}"},
        "digest": f"{i:032x}{abs(hash(version)) % 2**64:032x}",
        "urls": [f"{url}/{name}-{version}.tgz"],
    }


def generated_index(
    charts: int, versions: int, url: str, *, extra: dict[str, list[str]] | None = None
) -> bytes:
    """An index of `charts` charts with `versions` versions each; `extra` adds versions to some charts."""
    entries = {}
    for i in range(charts):
        name = f"app-{i:05d}"
        found = [f"1.{v}.0" for v in range(versions)] + (extra or {}).get(name, [])
        entries[name] = [chart_entry(name, v, url, i) for v in found]
    return yaml.safe_dump({"apiVersion": "v1", "entries": entries}, sort_keys=False).encode()
