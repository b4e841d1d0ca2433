"""Where code lives stays plain: small modules, one package per kind (the layering is checked by
import-linter in `make lint`; see [tool.importlinter] in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "kubemart"
MAX_LINES = 450
"""About 400: a module that grows past this holds more than one thing."""


@pytest.mark.parametrize("module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(module: Path) -> None:
    lines = len(module.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module.relative_to(PACKAGE)} has {lines} lines; split it by what it holds"


def test_each_kind_has_a_package_of_its_own() -> None:
    assert (PACKAGE / "release" / "decide.py").is_file(), "AppInstall: the release engine"
    assert (PACKAGE / "release" / "actions").is_dir()
    assert (PACKAGE / "sources").is_dir(), "the seam new source types extend"
