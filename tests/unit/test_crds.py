"""crds/ is generated from the models, and what it holds is a structural schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubemart.models import RESOURCES
from kubemart.models.crd import expected_files

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"


@pytest.mark.parametrize("directory", ["crds", "charts/kubemart/crds"])
def test_crds_directory_matches_the_models(directory: str) -> None:
    expected = expected_files()
    on_disk = {p.name: p.read_text() for p in (ROOT / directory).glob("*.yaml")}
    assert sorted(on_disk) == sorted(expected), f"{directory}/ is stale: run `make crds`"
    for name, text in expected.items():
        assert on_disk[name] == text, f"{directory}/{name} is stale: run `make crds`"


def _walk(node: Any, path: str = "") -> list[str]:
    """Paths of schema nodes that break the rules of a structural schema."""
    problems: list[str] = []
    if not isinstance(node, dict):
        return problems
    for bad in ("$ref", "anyOf", "allOf", "oneOf", "title"):
        if bad in node:
            problems.append(f"{path}: has {bad}")
    if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path}: has no type")
    for name, child in node.get("properties", {}).items():
        problems += _walk(child, f"{path}.{name}")
    if "items" in node:
        problems += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}{{}}")
    return problems


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.info.kind)
def test_schema_is_structural(resource: Any) -> None:
    crd = yaml.safe_load((CRDS / f"{resource.crd_name()}.yaml").read_text())
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["kubemart"]
    assert _walk(version["schema"]["openAPIV3Schema"]) == []


def test_only_values_keeps_unknown_fields() -> None:
    preserved: list[str] = []

    def collect(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if node.get("x-kubernetes-preserve-unknown-fields"):
            preserved.append(path)
        for name, child in node.get("properties", {}).items():
            collect(child, f"{path}.{name}")
        if "items" in node:
            collect(node["items"], f"{path}[]")

    for resource in RESOURCES:
        crd = yaml.safe_load((CRDS / f"{resource.crd_name()}.yaml").read_text())
        collect(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], resource.info.kind)
    assert preserved == ["MarketSource.spec.values", "AppInstall.spec.values"]
